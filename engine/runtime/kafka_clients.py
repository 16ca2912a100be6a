"""How every Kafka client of the engine connects: one mapping from the `kafka:` block to aiokafka's
keyword arguments (producer, consumer, admin) and to FastStream's broker, so TLS and SASL settings
cannot differ between the relay, the consumer and topic creation."""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Any

from aiokafka.abc import AbstractTokenProvider
from aiokafka.errors import KafkaConnectionError
from faststream.security import (
    BaseSecurity,
    SASLOAuthBearer,
    SASLPlaintext,
    SASLScram256,
    SASLScram512,
)

from provisioner.engine.config import KafkaConfig, KafkaTls


def rebootstrapping(client: Any) -> None:
    """Let an aiokafka client fall back to the configured bootstrap servers when no broker it
    learned from metadata answers any more (KIP-899's rebootstrap; aiokafka never does it).

    Apache Kafka's metadata names every broker, so losing one leaves the others; a cluster of
    stateless brokers on shared storage (Tansu) or one behind per-broker load balancers answers
    with only the broker asked, and a client that bootstrapped from broker a would retry a forever
    once it died, though b serves the same partitions. Wrapped on the instance, not patched into
    the library: only the engine's own clients change."""
    update = client._metadata_update

    async def update_or_rebootstrap(cluster_metadata: Any, topics: Any) -> bool:
        if await update(cluster_metadata, topics):
            return True
        try:
            await client.bootstrap()  # each configured server in turn; the metadata of the first that answers
        except KafkaConnectionError:
            return False
        return True

    client._metadata_update = update_or_rebootstrap


def rebootstrapping_broker(broker: Any, subscribers: list[Any]) -> None:
    """The same for every aiokafka client a started FastStream broker holds: its subscribers'
    consumers, its producer (dead-letter copies) and its admin client (the /readyz ping, which
    would otherwise say "broker unreachable" while the engine works on through another)."""
    clients = [subscriber.consumer._client for subscriber in subscribers if subscriber.consumer is not None]
    producer = getattr(getattr(broker.config.producer, "_producer", None), "producer", None)
    if producer is not None:
        clients.append(producer.client)
    admin = getattr(broker.config.admin, "admin_client", None)
    if admin is not None:
        clients.append(admin._client)
    for client in clients:
        rebootstrapping(client)


class KafkaSettingsError(ValueError):
    """A setting of the kafka block that only fails when used (a TLS file that cannot be read)."""


class StaticToken(AbstractTokenProvider):
    """OAUTHBEARER with a token the environment supplies (a sidecar or the platform refreshes the
    variable's source and restarts the engine); never printed."""

    def __init__(self, token: str):
        self._token = token

    async def token(self) -> str:
        return self._token

    def __repr__(self) -> str:
        return "StaticToken(***)"


def tls_context(tls: KafkaTls | None) -> ssl.SSLContext:
    """Verifying the brokers against `ca_file` (else the system's CAs), with the client certificate
    for mutual TLS when one is given."""
    tls = tls or KafkaTls()
    for key in ("ca_file", "cert_file", "key_file"):
        if (path := getattr(tls, key)) and not Path(path).is_file():
            raise KafkaSettingsError(f"kafka.tls.{key}: cannot read {path}: no such file")
    try:
        context = ssl.create_default_context(cafile=tls.ca_file)
        if tls.cert_file:
            password = tls.key_password.get_secret_value() if tls.key_password else None
            context.load_cert_chain(tls.cert_file, tls.key_file, password)
    except (OSError, ssl.SSLError) as exc:
        raise KafkaSettingsError(f"kafka.tls: cannot load the CA, certificate or key ({exc.strerror or exc})") from None
    context.check_hostname = tls.check_hostname
    return context


def client_options(config: KafkaConfig) -> dict[str, Any]:
    """aiokafka keyword arguments (besides bootstrap_servers) for a client of this cluster."""
    protocol = config.protocol
    options: dict[str, Any] = {"security_protocol": protocol}
    if protocol in ("SSL", "SASL_SSL"):
        options["ssl_context"] = tls_context(config.tls)
    sasl = config.sasl
    if sasl is not None:
        options["sasl_mechanism"] = sasl.mechanism
        if sasl.mechanism == "OAUTHBEARER":
            assert sasl.oauth_token is not None  # the schema requires it
            options["sasl_oauth_token_provider"] = StaticToken(sasl.oauth_token.get_secret_value())
        else:
            assert sasl.password is not None
            options["sasl_plain_username"] = sasl.username
            options["sasl_plain_password"] = sasl.password.get_secret_value()
    return options


_SASL_SECURITY = {"PLAIN": SASLPlaintext, "SCRAM-SHA-256": SASLScram256, "SCRAM-SHA-512": SASLScram512}


def broker_options(config: KafkaConfig) -> dict[str, Any]:
    """The same settings as FastStream's KafkaBroker takes them (a `security` object), built from
    client_options so both stay one mapping."""
    options = client_options(config)
    protocol, context = options["security_protocol"], options.get("ssl_context")
    use_ssl = protocol.endswith("SSL")
    mechanism = options.get("sasl_mechanism")
    security: BaseSecurity | None
    if mechanism == "OAUTHBEARER":
        security = SASLOAuthBearer(ssl_context=context, use_ssl=use_ssl)
        return {"security": security, "sasl_oauth_token_provider": options["sasl_oauth_token_provider"]}
    if mechanism is not None:
        security = _SASL_SECURITY[mechanism](
            options["sasl_plain_username"], options["sasl_plain_password"], ssl_context=context, use_ssl=use_ssl
        )
    else:
        security = BaseSecurity(ssl_context=context, use_ssl=True) if use_ssl else None
    return {"security": security} if security is not None else {}
