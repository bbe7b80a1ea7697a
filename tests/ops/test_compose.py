"""docker-compose.yml, checked without Docker: services, start order, health checks, ports,
volumes, images, and that every variable the code reads is set where that code runs.

Compose's ${VAR}, ${VAR:-default} and ${VAR:?message} are resolved here from .env.example,
with a stand-in for each secret left empty there."""

from __future__ import annotations

import ast
import re
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES = COMPOSE["services"]
ENV_EXAMPLE_TEXT = (ROOT / ".env.example").read_text()

AIRFLOW = {"airflow-api-server", "airflow-scheduler", "airflow-dag-processor", "airflow-triggerer", "airflow-worker"}
ONE_SHOT = {"minio-init", "recsys-migrate", "airflow-init"}
RECSYS_IMAGE = {"api", "impressions-flusher", "pipeline-exporter", "recsys-migrate"}
LONG_RUNNING = {"postgres", "redis", "minio", "api", "impressions-flusher", "pipeline-exporter", "prometheus",
                "grafana"} | AIRFLOW
PUBLISHED = {"api": 8000, "airflow-api-server": 8080, "prometheus": 9090, "grafana": 3000, "minio": 9001}
SECRET_NAME = re.compile(r"PASSWORD|SECRET|TOKEN|FERNET|ACCESS_KEY|API_KEY")
VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}")


def env_example() -> dict[str, str]:
    pairs = (line.split("=", 1) for line in ENV_EXAMPLE_TEXT.splitlines() if line and not line.startswith("#"))
    return {k.strip(): v.strip() for k, v in pairs}


def resolved_env() -> dict[str, str]:
    """What a filled-in .env gives: .env.example with a stand-in for every empty secret."""
    return {k: (v or f"secret-{k.lower()}") for k, v in env_example().items()}


def interpolate(value: str, env: dict[str, str]) -> str:
    def one(m: re.Match) -> str:
        name, op, arg = m.group(1), m.group(2), m.group(3)
        have = env.get(name)
        if op in (":-", "-"):
            return have if have else arg
        if op in (":?", "?") and not have:
            raise AssertionError(f"${{{name}}} is required: {arg}")
        return have or ""

    return VAR.sub(one, value.replace("$$", "\0")).replace("\0", "$")


def environment(service: str) -> dict[str, str]:
    env = SERVICES[service].get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {k: interpolate(str(v), resolved_env()) for k, v in env.items()}


def depends_on(service: str) -> dict[str, str]:
    deps = SERVICES[service].get("depends_on") or {}
    if isinstance(deps, list):
        return {d: "service_started" for d in deps}
    return {d: spec.get("condition", "service_started") for d, spec in deps.items()}


# --- services and start order -----------------------------------------------


def test_every_service_of_the_stack_is_defined():
    assert set(SERVICES) == LONG_RUNNING | ONE_SHOT


def test_long_running_services_have_health_checks_and_restart():
    for name in LONG_RUNNING:
        check = SERVICES[name].get("healthcheck")
        assert check and check.get("test"), f"{name} has no health check"
        assert check["test"][0] in ("CMD", "CMD-SHELL"), name
        assert check.get("interval") and check.get("retries"), name
        assert SERVICES[name].get("restart") in ("unless-stopped", "always"), name


def test_one_shot_services_run_once():
    for name in ONE_SHOT:
        assert SERVICES[name].get("restart") == "no", name
        assert "healthcheck" not in SERVICES[name], name


def test_dependencies_exist_and_use_the_right_condition():
    for name in SERVICES:
        for dep, condition in depends_on(name).items():
            assert dep in SERVICES, f"{name} depends on unknown {dep}"
            if condition == "service_healthy":
                assert "healthcheck" in SERVICES[dep], f"{name} waits for {dep} to be healthy; it has no health check"
            elif condition == "service_completed_successfully":
                assert dep in ONE_SHOT, f"{name} waits for {dep} to complete; it is not a one-shot"


def start_order() -> list[str]:
    order, seen = [], set()

    def visit(name, path):
        assert name not in path, f"dependency cycle: {' -> '.join([*path, name])}"
        if name in seen:
            return
        for dep in depends_on(name):
            visit(dep, [*path, name])
        seen.add(name)
        order.append(name)

    for name in sorted(SERVICES):
        visit(name, [])
    return order


@pytest.mark.parametrize("later, earlier", [
    ("recsys-migrate", "postgres"), ("api", "recsys-migrate"), ("api", "redis"), ("api", "minio-init"),
    ("minio-init", "minio"), ("pipeline-exporter", "recsys-migrate"), ("airflow-init", "postgres"),
    *[(a, "airflow-init") for a in sorted(AIRFLOW)], *[(a, "recsys-migrate") for a in sorted(AIRFLOW)],
    ("airflow-worker", "airflow-api-server"), ("grafana", "prometheus"), ("prometheus", "api"),
])
def test_start_order(later, earlier):
    order = start_order()
    assert order.index(earlier) < order.index(later)
    # a direct or indirect dependency, not an accident of sorting
    def reaches(a, b):
        return b in depends_on(a) or any(reaches(d, b) for d in depends_on(a))
    assert reaches(later, earlier)


# --- Airflow ------------------------------------------------------------------


def test_airflow_runs_every_component_with_celery_on_redis():
    commands = {name: " ".join(SERVICES[name]["command"]) for name in AIRFLOW}
    assert commands == {"airflow-api-server": "api-server", "airflow-scheduler": "scheduler",
                        "airflow-dag-processor": "dag-processor", "airflow-triggerer": "triggerer",
                        "airflow-worker": "celery worker"}
    images = {SERVICES[name]["image"] for name in AIRFLOW | {"airflow-init"}}
    assert len(images) == 1
    for name in AIRFLOW:
        env = environment(name)
        assert env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
        assert urlsplit(env["AIRFLOW__CELERY__BROKER_URL"]).hostname == "redis"
        assert urlsplit(env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]).hostname == "postgres"
        assert env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"].startswith("http://airflow-api-server:8080/")
        # one secret shared by every component, or tasks cannot talk to the api-server
        assert env["AIRFLOW__API_AUTH__JWT_SECRET"] == environment("airflow-api-server")["AIRFLOW__API_AUTH__JWT_SECRET"]
    # the broker and the recommendation cache share Redis, not a database number
    broker = urlsplit(environment("airflow-worker")["AIRFLOW__CELERY__BROKER_URL"]).path
    cache = urlsplit(environment("api")["RECSYS_REDIS_URL"]).path
    assert broker != cache


def test_airflow_init_migrates_and_creates_the_admin():
    env = environment("airflow-init")
    assert env["_AIRFLOW_DB_MIGRATE"] == "true" and env["_AIRFLOW_WWW_USER_CREATE"] == "true"
    assert env["_AIRFLOW_WWW_USER_PASSWORD"]


# --- ports and volumes --------------------------------------------------------


def published_ports() -> dict[str, list[tuple[int, int]]]:
    out = {}
    for name, svc in SERVICES.items():
        pairs = []
        for port in svc.get("ports", []):
            host, container = interpolate(str(port), resolved_env()).rsplit(":", 1)
            pairs.append((int(host.rsplit(":", 1)[-1]), int(container)))
        out[name] = pairs
    return out


def test_published_ports():
    ports = published_ports()
    assert {n: [c for _, c in p] for n, p in ports.items() if p} == {n: [c] for n, c in PUBLISHED.items()}
    host_ports = [h for p in ports.values() for h, _ in p]
    assert len(host_ports) == len(set(host_ports)), "two services publish the same host port"
    assert not ports["postgres"] and not ports["redis"], "databases stay on the internal network"


def test_volumes_are_declared_and_bind_mounts_exist():
    declared = set(COMPOSE["volumes"])
    used = set()
    for name, svc in SERVICES.items():
        for vol in svc.get("volumes", []):
            if isinstance(vol, dict):
                assert vol["type"] in ("tmpfs", "volume", "bind"), name
                continue
            source, target = vol.split(":")[:2]
            if source.startswith("."):
                assert (ROOT / source).exists(), f"{name} mounts missing {source}"
            else:
                assert source in declared, f"{name} uses undeclared volume {source}"
                used.add(source)
            assert target.startswith("/"), name
    assert used == declared, f"declared but unused: {declared - used}"
    for name, path in [("postgres", "/var/lib/postgresql/data"), ("redis", "/data"), ("minio", "/data"),
                       ("prometheus", "/prometheus"), ("grafana", "/var/lib/grafana")]:
        assert any(str(v).endswith(":" + path) for v in SERVICES[name]["volumes"]), f"{name} loses its data"


def test_prometheus_and_grafana_load_the_monitoring_files():
    mounts = " ".join(SERVICES["prometheus"]["volumes"])
    assert "./monitoring/prometheus.yml:/etc/prometheus/prometheus.yml" in mounts
    assert "./monitoring/alerts.yml:/etc/prometheus/alerts.yml" in mounts
    assert "--enable-feature=expand-external-labels" in SERVICES["prometheus"]["command"]
    assert "RECSYS_RUNBOOK_URL" in SERVICES["prometheus"]["environment"]
    mounts = " ".join(SERVICES["grafana"]["volumes"])
    assert "./monitoring/grafana/provisioning:/etc/grafana/provisioning" in mounts
    assert "./monitoring/grafana/dashboards:/var/lib/grafana/dashboards" in mounts
    home = environment("grafana")["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    assert (ROOT / "monitoring/grafana/dashboards" / Path(home).name).exists()


def test_postgres_creates_both_databases_and_minio_the_bucket():
    init = ROOT / "docker/postgres/init-databases.sh"
    assert init.stat().st_mode & 0o111, "the entrypoint sources a non-executable script into its own shell"
    sql = init.read_text()
    assert "CREATE DATABASE recsys" in sql and "CREATE DATABASE airflow" in sql
    assert urlsplit(environment("api")["RECSYS_DATABASE_URL"]).path == "/recsys"
    assert urlsplit(environment("airflow-scheduler")["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]).path == "/airflow"
    script = (ROOT / "docker/minio/create-bucket.sh").read_text()
    assert "mc mb --ignore-existing" in script
    bucket = environment("minio-init")["RECSYS_S3_BUCKET"]
    assert environment("api")["RECSYS_ARTIFACT_URI"].startswith(f"s3://{bucket}/")


def test_images_are_built_from_requirements():
    for name, dockerfile in [("api", "docker/api.Dockerfile"), ("airflow-worker", "docker/airflow.Dockerfile")]:
        build = SERVICES[name]["build"]
        assert build["context"] == "." and build["dockerfile"] == dockerfile
        text = (ROOT / dockerfile).read_text()
        assert "requirements.txt" in text and re.search(r"pip install .*-r ", text), dockerfile
        assert "COPY" in text and "recsys" in text and "RECSYS_VAR_DIR" in text, dockerfile
    assert "apache/airflow:${AIRFLOW_VERSION}" in (ROOT / "docker/airflow.Dockerfile").read_text()
    pinned = re.search(r"^apache-airflow==(\S+)", (ROOT / "requirements.txt").read_text(), re.M).group(1)
    assert f"AIRFLOW_VERSION={pinned}" in (ROOT / "docker/airflow.Dockerfile").read_text()
    for name in RECSYS_IMAGE:
        assert SERVICES[name]["image"] == SERVICES["api"]["image"]


# --- configuration: environment only, no secret committed --------------------


def test_every_compose_variable_is_in_env_example_and_vice_versa():
    text = (ROOT / "docker-compose.yml").read_text().replace("$$", "")  # $${X} is the container's own variable
    used = {m.group(1) for m in VAR.finditer(text)}
    documented = set(env_example())
    assert used <= documented, f"not in .env.example: {sorted(used - documented)}"
    assert documented <= used, f"in .env.example but unused: {sorted(documented - used)}"
    required = {m.group(1) for m in VAR.finditer(text) if m.group(2) in (":?", "?")}
    assert {"POSTGRES_PASSWORD", "REDIS_PASSWORD", "MINIO_ROOT_PASSWORD", "AIRFLOW_FERNET_KEY",
            "AIRFLOW_JWT_SECRET", "RECSYS_ADMIN_TOKEN", "GRAFANA_ADMIN_PASSWORD"} <= required


def test_no_secret_is_committed():
    for name in SERVICES:
        for key, value in (SERVICES[name].get("environment") or {}).items():
            if SECRET_NAME.search(key):
                assert "${" in str(value), f"{name}: {key} has a literal value"
    for key, value in env_example().items():
        if SECRET_NAME.search(key) and not key.endswith("_CONN_ID"):
            assert value == "", f".env.example ships a value for {key}"
    assert ".env" in (ROOT / ".gitignore").read_text().split()
    assert not (ROOT / ".env").exists() or ".env" in (ROOT / ".gitignore").read_text().split()


def test_a_missing_secret_stops_compose():
    env = resolved_env()
    env["REDIS_PASSWORD"] = ""
    with pytest.raises(AssertionError, match="REDIS_PASSWORD"):
        interpolate(COMPOSE["x-recsys-env"]["RECSYS_REDIS_URL"], env)


# --- every variable the code reads is set where the code runs ---------------


def settings_variables() -> dict[str, str]:
    """RECSYS_* variables of the settings fields that point at a service (URLs and URIs)."""
    from recsys.settings import Settings

    prefix = Settings.model_config.get("env_prefix", "")
    return {f"{prefix}{name}".upper(): name for name in Settings.model_fields if name.endswith(("_url", "_uri"))}


RUNS_RECSYS = RECSYS_IMAGE | AIRFLOW


def test_settings_urls_point_at_the_stack_services():
    variables = settings_variables()
    assert {"RECSYS_DATABASE_URL", "RECSYS_REDIS_URL", "RECSYS_ARTIFACT_URI"} <= set(variables)
    hosts = {"RECSYS_DATABASE_URL": "postgres", "RECSYS_REDIS_URL": "redis"}
    for name in RUNS_RECSYS:
        env = environment(name)
        for var in variables:
            assert env.get(var), f"{name} does not set {var}"
        for var, host in hosts.items():
            assert urlsplit(env[var]).hostname == host, f"{name}: {var} does not point at {host}"
        assert env["RECSYS_ARTIFACT_URI"].startswith("s3://")
        assert urlsplit(env["AWS_ENDPOINT_URL"]).hostname == "minio"
        assert env["AWS_ACCESS_KEY_ID"] and env["AWS_SECRET_ACCESS_KEY"] and env["AWS_DEFAULT_REGION"]
    assert environment("api")["RECSYS_ADMIN_TOKEN"]


def _module_strings(tree: ast.Module) -> dict[str, str]:
    return {
        t.id: node.value.value
        for node in tree.body if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant)
        and isinstance(node.value.value, str)
        for t in node.targets if isinstance(t, ast.Name)
    }


def _is_environ(node: ast.AST) -> bool:
    return (isinstance(node, ast.Attribute) and node.attr == "environ") or (isinstance(node, ast.Name) and node.id == "environ")


def env_reads(path: Path) -> set[str]:
    """Names read with os.environ.get / os.environ[...] / os.getenv, constants resolved."""
    tree = ast.parse(path.read_text())
    consts = _module_strings(tree)
    names = set()
    for node in ast.walk(tree):
        arg = None
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.args:
            if (node.func.attr in ("get", "setdefault") and _is_environ(node.func.value)) or node.func.attr == "getenv":
                arg = node.args[0]
        elif isinstance(node, ast.Subscript) and _is_environ(node.value):
            arg = node.slice
        if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
            names.add(arg.value)
        elif isinstance(arg, ast.Name) and arg.id in consts:
            names.add(consts[arg.id])
    return names


def code_reads() -> dict[str, set[str]]:
    """service -> variables its code reads: recsys/api in the API, the rest of recsys everywhere
    recsys runs, dags/ and plugins/ in every Airflow component."""
    need: dict[str, set[str]] = {name: set() for name in SERVICES}
    for path in (ROOT / "recsys").rglob("*.py"):
        where = {"api"} if "api" in path.relative_to(ROOT / "recsys").parts[:1] else RUNS_RECSYS
        for name in where:
            need[name] |= env_reads(path)
    for folder in ("dags", "plugins"):
        for path in (ROOT / folder).glob("*.py"):
            for name in AIRFLOW:
                need[name] |= env_reads(path)
    return need


def test_the_code_reader_finds_reads():
    plugin_reads = env_reads(ROOT / "plugins/recsys_alerts.py")
    assert {"RECSYS_ALERT_WEBHOOK_URL", "RECSYS_ALERT_EMAIL", "RECSYS_ALERT_SMTP_CONN_ID"} <= plugin_reads


# variables that matter to one process only: name -> the services that must set it
ONLY_FOR = {"PROMETHEUS_MULTIPROC_DIR": {"api"},  # read by `recsys serve` (cli.py) and recsys/serving/metrics.py
            "RECSYS_CLIENT_API_KEY": set()}  # `recsys simulate` on a client machine: no service of the stack


def test_every_variable_the_code_reads_is_set():
    for name, variables in code_reads().items():
        variables = {v for v in variables if name in ONLY_FOR.get(v, {name})}
        missing = variables - set(environment(name))
        assert not missing, f"{name} does not set {sorted(missing)}, which its code reads"


def test_the_impression_flusher_follows_the_stream_and_its_health_check_reads_its_heartbeat():
    svc = SERVICES["impressions-flusher"]
    command = svc["command"]
    assert command[:5] == ["python", "-m", "recsys", "impressions", "flush"] and "--follow" in command
    heartbeat = command[command.index("--heartbeat") + 1]
    assert heartbeat in " ".join(svc["healthcheck"]["test"])
    assert depends_on("impressions-flusher") == {"redis": "service_healthy",
                                                 "recsys-migrate": "service_completed_successfully"}


# --- security (README "Security") --------------------------------------------


def test_published_ports_bind_to_localhost_unless_configured():
    for name, svc in SERVICES.items():
        for port in svc.get("ports", []):
            assert str(port).startswith("${RECSYS_BIND_ADDRESS:-127.0.0.1}:"), f"{name} publishes {port} on every interface"
            assert interpolate(str(port), resolved_env()).startswith("127.0.0.1:"), name
            env = {**resolved_env(), "RECSYS_BIND_ADDRESS": "0.0.0.0"}
            assert interpolate(str(port), env).startswith("0.0.0.0:"), name
    assert env_example()["RECSYS_BIND_ADDRESS"] == "127.0.0.1"


def test_prometheus_runs_without_the_lifecycle_api():
    command = SERVICES["prometheus"]["command"]
    assert not any("lifecycle" in part or "admin-api" in part for part in command)


def credentials(service: str) -> tuple[str, str]:
    env = environment(service)
    return env.get("AWS_ACCESS_KEY_ID", ""), env.get("AWS_SECRET_ACCESS_KEY", "")


def test_object_store_credentials_read_only_for_the_api_write_only_for_airflow():
    example = resolved_env()
    root = (example["MINIO_ROOT_USER"], example["MINIO_ROOT_PASSWORD"])
    reader = (example["RECSYS_S3_READER_ACCESS_KEY"], example["RECSYS_S3_READER_SECRET_KEY"])
    writer = (example["RECSYS_S3_WRITER_ACCESS_KEY"], example["RECSYS_S3_WRITER_SECRET_KEY"])
    for name in ("api", "impressions-flusher", "pipeline-exporter"):
        assert credentials(name) == reader, name
    for name in AIRFLOW | {"airflow-init"}:
        assert credentials(name) == writer, name
        conn = environment(name)["AIRFLOW_CONN_RECSYS_S3"]
        assert f'"login": "{writer[0]}"' in conn and f'"password": "{writer[1]}"' in conn, name
    for name in SERVICES:  # the root credentials stay with MinIO and its init job
        values = set(environment(name).values())
        if name not in ("minio", "minio-init"):
            assert root[1] not in " ".join(values), f"{name} gets the MinIO root password"


def test_minio_init_creates_the_read_and_write_users_and_policies():
    script = (ROOT / "docker/minio/create-bucket.sh").read_text()
    for command in ("mc admin policy create recsys", "mc admin user add recsys", "mc admin policy attach recsys"):
        assert command in script
    read = re.search(r"policy recsys-read '(\[.*?\])'", script).group(1)
    write = re.search(r"policy recsys-write '(\[.*?\])'", script).group(1)
    assert "s3:GetObject" in read and "Put" not in read and "Delete" not in read
    assert "s3:PutObject" in write and "s3:DeleteObject" in write
    assert 'user "${RECSYS_S3_READER_ACCESS_KEY}" "${RECSYS_S3_READER_SECRET_KEY}" recsys-read' in script
    assert 'user "${RECSYS_S3_WRITER_ACCESS_KEY}" "${RECSYS_S3_WRITER_SECRET_KEY}" recsys-write' in script
    init = environment("minio-init")
    assert {"RECSYS_S3_READER_ACCESS_KEY", "RECSYS_S3_WRITER_ACCESS_KEY"} <= set(init)


def test_the_api_needs_keys_and_a_request_id_secret_in_production():
    env = environment("api")
    assert env["RECSYS_ENVIRONMENT"] == "production" and env["RECSYS_API_KEYS"]
    assert environment("airflow-scheduler")["RECSYS_REQUEST_ID_SECRET"] == env["RECSYS_REQUEST_ID_SECRET"]
    text = (ROOT / "docker-compose.yml").read_text()
    required = {m.group(1) for m in VAR.finditer(text) if m.group(2) in (":?", "?")}
    assert {"RECSYS_API_KEYS", "RECSYS_REQUEST_ID_SECRET", "RECSYS_S3_READER_SECRET_KEY",
            "RECSYS_S3_WRITER_SECRET_KEY"} <= required


def test_metrics_need_a_key_and_prometheus_scrapes_with_its_own():
    from recsys.settings import Settings, parse_api_keys

    env = environment("api")
    assert env.get("RECSYS_METRICS_PUBLIC", "false").lower() == "false", "compose makes /metrics public"
    assert "RECSYS_METRICS_PUBLIC" not in env_example()
    filled = {**resolved_env(), "RECSYS_API_KEYS": "shop:0123456789abcdef0123"}  # as .env.example says
    api_keys = interpolate(SERVICES["api"]["environment"]["RECSYS_API_KEYS"], filled)
    assert parse_api_keys(api_keys.split(",")) == [("shop", "0123456789abcdef0123"),
                                                   ("prometheus", filled["RECSYS_PROMETHEUS_API_KEY"])]
    assert Settings(api_keys=api_keys).api_key_pairs  # the settings take the list as compose builds it
    text = (ROOT / "docker-compose.yml").read_text()
    required = {m.group(1) for m in VAR.finditer(text) if m.group(2) in (":?", "?")}
    assert "RECSYS_PROMETHEUS_API_KEY" in required
    # Prometheus reads the same key from a compose secret, and its API scrape sends it
    secret = COMPOSE["secrets"]["prometheus_api_key"]
    assert secret == {"environment": "RECSYS_PROMETHEUS_API_KEY"}
    assert "prometheus_api_key" in SERVICES["prometheus"]["secrets"]
    prometheus_env = SERVICES["prometheus"].get("environment", {})
    assert not any("RECSYS_PROMETHEUS_API_KEY" in str(v) for v in prometheus_env.values())  # a file, not a variable
    config = yaml.safe_load((ROOT / "monitoring/prometheus.yml").read_text())
    api_job = next(job for job in config["scrape_configs"] if job["job_name"] == "recsys-api")
    assert api_job["authorization"] == {"type": "Bearer", "credentials_file": "/run/secrets/prometheus_api_key"}
