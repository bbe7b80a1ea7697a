"""The settings object: validation at start, and the README's table stays complete."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from recsys.settings import Settings, settings_error_message

README = Path(__file__).resolve().parents[1] / "README.md"


def test_defaults_are_the_embedded_laptop_setup(tmp_path):
    s = Settings(var_dir=tmp_path)
    assert s.resolved_database_url == f"sqlite:///{tmp_path / 'recsys.db'}"
    assert s.resolved_artifact_uri == str(tmp_path / "artifacts")
    assert s.redis_url == ""


def test_environment_variables_are_read(monkeypatch):
    monkeypatch.setenv("RECSYS_DATABASE_URL", "postgresql://u@h/db")
    monkeypatch.setenv("RECSYS_EPOCHS", "7")
    s = Settings()
    assert s.resolved_database_url == "postgresql://u@h/db" and s.epochs == 7


@pytest.mark.parametrize(
    "env, value",
    [("RECSYS_LOSS", "hinge"), ("RECSYS_PROMOTION_POLICY", "yolo"), ("RECSYS_EPOCHS", "0"), ("RECSYS_EPOCHS", "many"),
     ("RECSYS_ITEM_FEATURES", "name,colour"), ("RECSYS_USER_FEATURES", "shoe_size"),
     ("RECSYS_DRIFT_REFERENCE_DAYS", "0"), ("RECSYS_DRIFT_PSI_THRESHOLD", "0"), ("RECSYS_DRIFT_GINI_JUMP", "1.5"),
     ("RECSYS_DRIFT_COVERAGE_DROP", "1")],
)
def test_bad_values_are_refused_with_the_field_named(monkeypatch, env, value):
    monkeypatch.setenv(env, value)
    with pytest.raises(ValidationError) as info:
        Settings()
    assert env.removeprefix("RECSYS_").lower() in str(info.value)


def test_feature_groups_are_comma_separated(monkeypatch):
    monkeypatch.setenv("RECSYS_USER_FEATURES", "country, segment")
    monkeypatch.setenv("RECSYS_ITEM_FEATURES", "")
    s = Settings()
    assert s.user_features == ["country", "segment"] and s.item_features == []


def test_readme_lists_every_variable():
    text = README.read_text()
    missing = [f"RECSYS_{name.upper()}" for name in Settings.model_fields if f"`RECSYS_{name.upper()}`" not in text]
    assert missing == [], f"README configuration table lacks {missing} (python scripts/config_table.py)"


@pytest.mark.parametrize(("value", "types"), [
    ("purchased", ("PURCHASE",)),
    ("interacted", ("CLICK", "VIEW", "PURCHASE", "WISHLIST", "RETURN", "ADD_TO_CART")),
    (" view, Purchase ", ("VIEW", "PURCHASE")),
])
def test_exclude_seen_names_event_types(monkeypatch, value, types):
    monkeypatch.setenv("RECSYS_EXCLUDE_SEEN", value)
    assert Settings().exclude_seen_types == types
    assert Settings(_env_file=None).exclude_seen_types == types


@pytest.mark.parametrize(("env", "value"), [("RECSYS_EXCLUDE_SEEN", "bought"), ("RECSYS_EXCLUDE_SEEN", ","),
                                            ("RECSYS_SELECTION_METRIC", "auc"), ("RECSYS_SELECTION_METRIC", "ndcg@0")])
def test_bad_exclude_seen_and_selection_metric_are_refused(monkeypatch, env, value):
    monkeypatch.setenv(env, value)
    with pytest.raises(ValidationError, match=env.removeprefix("RECSYS_").lower()):
        Settings()


# --- secrets: refused unless RECSYS_ENVIRONMENT=development is set, never echoed -------------------
REQUEST_SECRET = "Zq8Wx3Vb"  # short: refused (distinctive, so any 4 characters of it found in a message are a leak)
ADMIN_SECRET = "Pk4Jh7Ty"
KEY_SECRET = "Mn2Rc6Lg"
DB_PASSWORD = "Fd5Sa1Qe"


def leaked(secret: str, text: str) -> list[str]:
    """The 4-character pieces of ``secret`` found in ``text``."""
    return [secret[i:i + 4] for i in range(len(secret) - 3) if secret[i:i + 4] in text]


def test_an_unset_environment_refuses_placeholder_and_short_secrets(monkeypatch):
    monkeypatch.delenv("RECSYS_ENVIRONMENT", raising=False)
    monkeypatch.delenv("RECSYS_REQUEST_ID_SECRET", raising=False)
    assert Settings.model_fields["environment"].default == "production"
    with pytest.raises(ValidationError, match="RECSYS_REQUEST_ID_SECRET"):
        Settings()  # the placeholder default
    with pytest.raises(ValidationError, match="RECSYS_REQUEST_ID_SECRET"):
        Settings(request_id_secret="short-secret")
    with pytest.raises(ValidationError, match="RECSYS_ADMIN_TOKEN"):
        Settings(request_id_secret="r" * 32, admin_token="admin")
    assert Settings(request_id_secret="r" * 32, admin_token="").environment == "production"  # admin endpoints off
    monkeypatch.setenv("RECSYS_ENVIRONMENT", "development")  # explicitly: a laptop
    dev = Settings(admin_token="admin")
    assert dev.request_id_secret == "changethis" and dev.admin_token == "admin"


@pytest.mark.parametrize("env, secret", [
    ({"RECSYS_API_KEYS": f"shop:{KEY_SECRET}"}, KEY_SECRET),  # too short
    ({"RECSYS_API_KEYS": f"shop:{KEY_SECRET * 3},{KEY_SECRET * 3}"}, KEY_SECRET),  # a key without its name
    ({"RECSYS_API_KEYS": f"shop:{KEY_SECRET * 3},bench:{KEY_SECRET * 3}"}, KEY_SECRET),  # listed twice
    ({"RECSYS_ADMIN_TOKEN": ADMIN_SECRET}, ADMIN_SECRET),
    ({"RECSYS_REQUEST_ID_SECRET": REQUEST_SECRET, "RECSYS_DATABASE_URL": f"postgresql://u:{DB_PASSWORD}@h/db"},
     REQUEST_SECRET + DB_PASSWORD),
])
def test_settings_errors_never_echo_a_secret(monkeypatch, env, secret):
    monkeypatch.delenv("RECSYS_ENVIRONMENT", raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ValidationError) as info:
        Settings()
    variable = next(name for name in env if name != "RECSYS_DATABASE_URL")
    for text in (str(info.value), repr(info.value), settings_error_message(info.value)):
        assert variable in text and not leaked(secret, text), text
    assert "\n" not in settings_error_message(info.value)
