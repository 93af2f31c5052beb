"""docker-compose.yml is valid and wires every service (checked without a Docker engine)."""

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def compose_config(*overrides: str, **env: str) -> subprocess.CompletedProcess:
    """`docker-compose config` of docker-compose.yml and the `overrides` files after it."""
    binary = shutil.which("docker-compose")
    if binary is None:
        pytest.fail("docker-compose not installed (scripts/ensure-system-packages installs it)")
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("TUNELOOP_", "MINIO_", "AWS_"))} | env
    files = [argument for name in ("docker-compose.yml", *overrides) for argument in ("-f", str(ROOT / name))]
    # --format json is not in every release; YAML output parses as JSON-compatible via yaml.
    return subprocess.run([binary, *files, "config"], cwd=ROOT, env=environment, capture_output=True, text=True,
                          timeout=60)


def test_compose_file_is_valid_and_complete():
    import yaml

    result = compose_config(TUNELOOP_SECRET_KEY="s3cret")
    assert result.returncode == 0, result.stderr
    config = yaml.safe_load(result.stdout)
    services = config["services"]
    assert set(services) == {"postgres", "redis", "migrate", "web", "beat", "worker-generate", "worker-train"}
    assert services["migrate"]["command"] == ["tuneloop", "db", "upgrade"]
    # One schedule however many workers are scaled: the beat service, and no worker runs its own.
    assert services["beat"]["command"] == ["tuneloop", "beat"]
    assert "deploy" not in services["beat"] and "ports" not in services["beat"]
    for worker, queue in (("worker-generate", "generate"), ("worker-train", "train")):
        assert queue in services[worker]["command"] and "--no-beat" in services[worker]["command"]
        devices = services[worker]["deploy"]["resources"]["reservations"]["devices"]
        assert devices[0]["capabilities"] == ["gpu"]
        assert services[worker]["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    environment = services["web"]["environment"]
    assert environment["TUNELOOP_SECRET_KEY"] == "s3cret"
    assert environment["TUNELOOP_DATABASE_URL"].startswith("postgresql+psycopg://")
    assert environment["TUNELOOP_BROKER_URL"].startswith("redis://")
    assert {"pgdata", "data"} <= set(config["volumes"])
    json.dumps(config)  # plain data, nothing the engine would have to guess


def test_checkpoints_go_to_an_object_store_when_one_is_named():
    import yaml

    default = yaml.safe_load(compose_config(TUNELOOP_SECRET_KEY="s3cret").stdout)
    assert default["services"]["worker-train"]["environment"]["TUNELOOP_CHECKPOINT_DIR"] == "/data/checkpoints"
    result = compose_config(TUNELOOP_SECRET_KEY="s3cret", TUNELOOP_CHECKPOINT_DIR="s3://bucket/checkpoints",
                            AWS_ENDPOINT_URL="http://minio:9000", AWS_ACCESS_KEY_ID="tuneloop")
    assert result.returncode == 0, result.stderr
    for service in ("web", "worker-generate", "worker-train"):
        environment = yaml.safe_load(result.stdout)["services"][service]["environment"]
        assert environment["TUNELOOP_CHECKPOINT_DIR"] == "s3://bucket/checkpoints"
        assert environment["AWS_ENDPOINT_URL"] == "http://minio:9000" and environment["AWS_ACCESS_KEY_ID"] == "tuneloop"


def test_minio_override_puts_checkpoints_in_its_bucket():
    import yaml

    refused = compose_config("docker-compose.minio.yml", TUNELOOP_SECRET_KEY="s3cret")
    assert refused.returncode != 0 and "MINIO_ROOT_PASSWORD" in refused.stderr
    result = compose_config("docker-compose.minio.yml", TUNELOOP_SECRET_KEY="s3cret", MINIO_ROOT_PASSWORD="pa55word")
    assert result.returncode == 0, result.stderr
    services = yaml.safe_load(result.stdout)["services"]
    assert "mc mb --ignore-existing store/tuneloop" in services["minio-bucket"]["command"][0]
    assert services["minio-bucket"]["depends_on"]["minio"]["condition"] == "service_healthy"
    for worker in ("worker-generate", "worker-train"):
        environment = services[worker]["environment"]
        assert environment["TUNELOOP_CHECKPOINT_DIR"] == "s3://tuneloop/checkpoints"
        assert environment["AWS_ENDPOINT_URL"] == "http://minio:9000"
        assert (environment["AWS_ACCESS_KEY_ID"], environment["AWS_SECRET_ACCESS_KEY"]) == ("tuneloop", "pa55word")
        # The workers start once the bucket exists, and keep the base file's dependencies.
        assert services[worker]["depends_on"]["minio-bucket"]["condition"] == "service_completed_successfully"
        assert services[worker]["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
        assert services[worker]["environment"]["TUNELOOP_DATABASE_URL"].startswith("postgresql+psycopg://")


def test_generation_workers_scale():
    """`--scale worker-generate=N` needs a service with no fixed name or host port to collide on."""
    import yaml

    result = compose_config(TUNELOOP_SECRET_KEY="s3cret")
    generate = yaml.safe_load(result.stdout)["services"]["worker-generate"]
    assert "container_name" not in generate and "ports" not in generate


def test_compose_refuses_to_run_without_a_secret():
    result = compose_config()
    assert result.returncode != 0
    assert "TUNELOOP_SECRET_KEY" in result.stderr


def test_the_image_holds_every_package_the_project_installs():
    import tomllib

    packages = [pattern.rstrip("*") for pattern in
                tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]["find"]["include"]]
    copied = {line.split()[1] for line in (ROOT / "Dockerfile").read_text().splitlines() if line.startswith("COPY ")}
    assert packages and set(packages) <= copied, set(packages) - copied
