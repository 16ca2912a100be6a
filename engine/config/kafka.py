"""The `kafka:` block: how the engine reaches a cluster as operators run one (several bootstrap
brokers, TLS, SASL, replicated or operator-created topics), or the embedded broker when unset."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator

from provisioner.engine.config.base import Strict

SecurityProtocol = Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"]
SaslMechanism = Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512", "OAUTHBEARER"]

# host:port, the host a name, IPv4 address or [IPv6] address
_SERVER = re.compile(r"^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.-]+):\d{1,5}$")

# Keys whose value is a secret: the loader refuses them written out in the file (`${ENV}` only).
SECRET_KEYS = (("sasl", "password"), ("sasl", "oauth_token"), ("tls", "key_password"))


class KafkaTls(Strict):
    """TLS to the brokers; without `ca_file` the system's trusted CAs verify them (managed services)."""

    ca_file: str | None = Field(default=None, description="PEM file of the CA(s) that signed the brokers")
    cert_file: str | None = Field(default=None, description="client certificate (PEM) for mutual TLS")
    key_file: str | None = Field(default=None, description="its private key (PEM); may be inside cert_file")
    key_password: SecretStr | None = Field(default=None, description="the key's password, from ${ENV}")
    check_hostname: bool = Field(default=True, description="false only for brokers reached by IP behind a NAT")

    @model_validator(mode="after")
    def _pairs(self) -> KafkaTls:
        if self.key_file and not self.cert_file:
            raise ValueError("key_file needs cert_file (the client certificate it belongs to)")
        if self.key_password and not self.cert_file:
            raise ValueError("key_password needs cert_file and key_file")
        return self


class KafkaSasl(Strict):
    mechanism: SaslMechanism
    username: str | None = None
    password: SecretStr | None = Field(default=None, description="from ${ENV}")
    oauth_token: SecretStr | None = Field(default=None, description="OAUTHBEARER: a bearer token, from ${ENV}")

    @model_validator(mode="after")
    def _credentials(self) -> KafkaSasl:
        if self.mechanism == "OAUTHBEARER":
            if not self.oauth_token:
                raise ValueError("OAUTHBEARER needs oauth_token (e.g. ${KAFKA_OAUTH_TOKEN})")
            if self.username or self.password:
                raise ValueError("OAUTHBEARER takes oauth_token, not username/password")
        else:
            if not self.username or not self.password:
                raise ValueError(f"{self.mechanism} needs username and password (password from ${{ENV}})")
            if self.oauth_token:
                raise ValueError(f"oauth_token is for OAUTHBEARER, not {self.mechanism}")
        return self


class KafkaConfig(Strict):
    bootstrap_servers: list[str] | None = Field(
        default=None, description="host:port of some brokers (a list or 'a:9092,b:9092'); unset = embedded broker"
    )
    topic_prefix: str = "provisioner"
    partitions: int = Field(default=6, ge=1, description="of topics the engine creates")
    replication_factor: int | None = Field(
        default=None, ge=1, description="of topics the engine creates; unset = the cluster's default"
    )
    create_topics: bool = Field(default=True, description="false: the operator created the topics; they are checked")
    compression: Literal["zstd", "lz4", "gzip", "snappy", "none"] = Field(
        default="zstd",
        description="of the record batches the relay publishes: zstd keeps an event a quarter of its size "
        "on the brokers (the embedded broker holds every event in memory) for no more CPU",
    )
    security_protocol: SecurityProtocol | None = Field(
        default=None, description="unset: SASL_SSL with a sasl block, SSL with only a tls block, else PLAINTEXT"
    )
    tls: KafkaTls | None = None
    sasl: KafkaSasl | None = None

    @field_validator("bootstrap_servers", mode="before", json_schema_input_type=list[str] | str | None)
    @classmethod
    def _servers(cls, value: object) -> object:
        if isinstance(value, str):
            value = [part.strip() for part in value.split(",") if part.strip()]
            if not value:
                return None
        if isinstance(value, list):
            bad = [s for s in value if not isinstance(s, str) or not _SERVER.match(s.strip())]
            if bad:
                raise ValueError(f"each bootstrap server is host:port, not {bad[0]!r}")
            return [s.strip() for s in value]
        return value

    @model_validator(mode="after")
    def _combos(self) -> KafkaConfig:
        if not self.bootstrap_servers:
            given = [k for k in ("tls", "sasl", "security_protocol", "replication_factor") if getattr(self, k)]
            if not self.create_topics:
                given.append("create_topics")
            if given:
                raise ValueError(f"{', '.join(given)} apply to a cluster: set bootstrap_servers too")
            return self
        protocol = self.protocol
        if protocol.startswith("SASL_") and self.sasl is None:
            raise ValueError(f"security_protocol {protocol} needs a sasl block (mechanism, credentials)")
        if self.sasl is not None and not protocol.startswith("SASL_"):
            raise ValueError(f"a sasl block needs security_protocol SASL_SSL or SASL_PLAINTEXT, not {protocol}")
        if self.tls is not None and not protocol.endswith("SSL"):
            raise ValueError(f"a tls block needs security_protocol SSL or SASL_SSL, not {protocol}")
        return self

    @property
    def protocol(self) -> SecurityProtocol:
        """The security protocol given, or the one the tls and sasl blocks imply. SASL alone means
        SASL_SSL: credentials never cross the network in clear unless SASL_PLAINTEXT is asked for."""
        if self.security_protocol:
            return self.security_protocol
        if self.sasl is not None:
            return "SASL_SSL"
        return "SSL" if self.tls is not None else "PLAINTEXT"
