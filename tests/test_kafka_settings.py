"""The kafka block as operators write it → the keyword arguments every Kafka client gets (no network)."""

from __future__ import annotations

import shutil
import ssl
import subprocess
from pathlib import Path

import pytest
from faststream.security import BaseSecurity, SASLOAuthBearer, SASLScram512

from provisioner.engine.config import ConfigError, KafkaConfig, load_config
from provisioner.engine.runtime.kafka_clients import KafkaSettingsError, broker_options, client_options


def _config(tmp_path: Path, kafka: str) -> Path:
    file = tmp_path / "c.yaml"
    file.write_text("kafka:\n" + kafka + "sources:\n  - {name: hr, type: file, path: people.csv}\n")
    return file


def _problems(file: Path) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load_config(file)
    return [str(p) for p in caught.value.problems]


@pytest.fixture(scope="module")
def pem(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate and its key, made by openssl."""
    if not shutil.which("openssl"):
        pytest.skip("openssl is not installed")
    folder = tmp_path_factory.mktemp("pem")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [
            *("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=kafka.test"),
            *("-keyout", str(key), "-out", str(cert)),
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


def test_bootstrap_servers_take_a_list_or_a_comma_separated_string(tmp_path: Path):
    for written in ('"a.example:9092, b.example:9093"', "[a.example:9092, b.example:9093]"):
        config = load_config(_config(tmp_path, f"  bootstrap_servers: {written}\n"))
        assert config.kafka.bootstrap_servers == ["a.example:9092", "b.example:9093"]
    assert KafkaConfig(bootstrap_servers="").bootstrap_servers is None  # type: ignore[arg-type]
    problems = _problems(_config(tmp_path, '  bootstrap_servers: "a.example:9092,b.example"\n'))
    expected = "kafka.bootstrap_servers: each bootstrap server is host:port, not 'b.example'"
    assert problems == [f"{tmp_path / 'c.yaml'}:2: {expected}"]


def test_plaintext_cluster_gets_no_security_settings():
    config = KafkaConfig(bootstrap_servers=["a:9092"])
    assert client_options(config) == {"security_protocol": "PLAINTEXT"}
    assert broker_options(config) == {}


def test_sasl_scram_over_tls_with_secrets_from_the_environment(tmp_path: Path, monkeypatch, pem):
    cert, _ = pem
    monkeypatch.setenv("KAFKA_PASSWORD", "hunter2-very-secret")
    file = _config(
        tmp_path,
        "  bootstrap_servers: b-1.example:9096,b-2.example:9096\n"
        "  sasl: {mechanism: SCRAM-SHA-512, username: provisioner, password: '${KAFKA_PASSWORD}'}\n"
        f"  tls: {{ca_file: {cert.name}}}\n",
    )
    shutil.copy(cert, tmp_path / cert.name)  # a relative ca_file is beside the config file
    config = load_config(file)
    assert config.kafka.tls and config.kafka.tls.ca_file == str(tmp_path / cert.name)
    options = client_options(config.kafka)
    assert options["security_protocol"] == "SASL_SSL"
    assert options["sasl_mechanism"] == "SCRAM-SHA-512"
    assert (options["sasl_plain_username"], options["sasl_plain_password"]) == ("provisioner", "hunter2-very-secret")
    context = options["ssl_context"]
    assert isinstance(context, ssl.SSLContext) and context.verify_mode == ssl.CERT_REQUIRED
    assert context.cert_store_stats()["x509_ca"] == 1  # our CA, not only the system's
    broker = broker_options(config.kafka)["security"]
    assert isinstance(broker, SASLScram512) and broker.use_ssl
    assert broker.ssl_context.cert_store_stats()["x509_ca"] == 1
    assert "hunter2" not in repr(config) and "hunter2" not in config.model_dump_json()


def test_sasl_alone_means_sasl_ssl_with_the_system_cas():
    config = KafkaConfig.model_validate(
        {"bootstrap_servers": "x.example:9092", "sasl": {"mechanism": "PLAIN", "username": "u", "password": "p"}}
    )
    options = client_options(config)
    assert options["security_protocol"] == "SASL_SSL" and options["sasl_mechanism"] == "PLAIN"
    assert options["ssl_context"].check_hostname
    plain = KafkaConfig.model_validate(
        {
            "bootstrap_servers": "x.example:9092",
            "security_protocol": "SASL_PLAINTEXT",
            "sasl": {"mechanism": "SCRAM-SHA-256", "username": "u", "password": "p"},
        }
    )
    options = client_options(plain)
    assert options["security_protocol"] == "SASL_PLAINTEXT" and "ssl_context" not in options


async def test_oauthbearer_hands_the_token_to_a_provider():
    config = KafkaConfig.model_validate(
        {"bootstrap_servers": "x.example:9092", "sasl": {"mechanism": "OAUTHBEARER", "oauth_token": "eyJtoken"}}
    )
    options = client_options(config)
    assert options["sasl_mechanism"] == "OAUTHBEARER"
    assert await options["sasl_oauth_token_provider"].token() == "eyJtoken"
    assert "eyJtoken" not in repr(options["sasl_oauth_token_provider"])
    broker = broker_options(config)
    assert isinstance(broker["security"], SASLOAuthBearer)
    assert broker["sasl_oauth_token_provider"] is not None


def test_mutual_tls_loads_the_client_certificate(pem):
    cert, key = pem
    config = KafkaConfig.model_validate(
        {"bootstrap_servers": ["k:9093"], "tls": {"ca_file": str(cert), "cert_file": str(cert), "key_file": str(key)}}
    )
    options = client_options(config)
    assert options["security_protocol"] == "SSL"
    security = broker_options(config)["security"]
    assert type(security) is BaseSecurity and security.use_ssl
    wrong = KafkaConfig.model_validate(
        {"bootstrap_servers": ["k:9093"], "tls": {"cert_file": str(cert), "key_file": str(cert)}}
    )
    with pytest.raises(KafkaSettingsError, match=r"kafka\.tls: cannot load"):
        client_options(wrong)  # the certificate given as its own key
    missing = KafkaConfig.model_validate({"bootstrap_servers": ["k:9093"], "tls": {"ca_file": "/nonexistent/ca.pem"}})
    with pytest.raises(KafkaSettingsError, match=r"kafka.tls.ca_file: cannot read /nonexistent/ca.pem: no such file"):
        client_options(missing)


def test_bad_combinations_are_config_errors_at_their_line(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("PW", "pw")
    sasl_plain = "  sasl: {mechanism: PLAIN, username: u, password: '${PW}'}\n"
    cases = {
        "  tls: {ca_file: ca.pem}\n": "tls apply to a cluster: set bootstrap_servers too",
        "  create_topics: false\n": "create_topics apply to a cluster",
        "  bootstrap_servers: a:1\n  security_protocol: SSL\n" + sasl_plain: (
            "a sasl block needs security_protocol SASL_SSL or SASL_PLAINTEXT, not SSL"
        ),
        "  bootstrap_servers: a:1\n  security_protocol: SASL_SSL\n": "SASL_SSL needs a sasl block",
        "  bootstrap_servers: a:1\n  sasl: {mechanism: SCRAM-SHA-256, username: u}\n": (
            "SCRAM-SHA-256 needs username and password"
        ),
        "  bootstrap_servers: a:1\n  sasl: {mechanism: OAUTHBEARER}\n": "OAUTHBEARER needs oauth_token",
        "  bootstrap_servers: a:1\n  sasl: {mechanism: GSSAPI, username: u, password: '${PW}'}\n": "mechanism",
        "  bootstrap_servers: a:1\n  tls: {key_file: k.pem}\n": "key_file needs cert_file",
        "  bootstrap_servers: a:1\n  replication_factor: 0\n": "greater than or equal to 1",
    }
    for kafka, expected in cases.items():
        problems = _problems(_config(tmp_path, kafka))
        assert len(problems) == 1 and expected in problems[0], (kafka, problems)
        assert f"{tmp_path / 'c.yaml'}:" in problems[0]


def test_a_password_written_in_the_file_is_refused(tmp_path: Path):
    file = _config(
        tmp_path, "  bootstrap_servers: a:1\n  sasl:\n    mechanism: PLAIN\n    username: u\n    password: hunter2\n"
    )
    problems = _problems(file)
    assert problems == [f"{file}:6: kafka.sasl.password: a secret is never written in the file: use ${{VARIABLE}}"]
    assert "hunter2" not in problems[0]


def test_replication_factor_and_partitions_are_read():
    config = KafkaConfig.model_validate(
        {"bootstrap_servers": "a:1", "partitions": 12, "replication_factor": 3, "create_topics": False}
    )
    assert (config.partitions, config.replication_factor, config.create_topics) == (12, 3, False)
    assert KafkaConfig().replication_factor is None  # the cluster's default.replication.factor
