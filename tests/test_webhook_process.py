"""`provisioner run` as a real process: the vendor pushes a signed webhook, and the hire reaches
the SCIM app long before the next poll would have found it."""

from __future__ import annotations

import json
import time
from datetime import date, timedelta

import httpx

from provisioner.engine.kit.servers import free_port, serve_asgi
from provisioner.sources.lever.emulator import LeverState, create_app
from tests.conftest import scim_users
from tests.processes import answers, engine_process, wait_for


def test_signed_webhook_hire_is_provisioned_by_the_running_engine(tmp_path, scim_server, scim):
    lever = LeverState()
    port = free_port()
    lever.webhook_url = f"http://127.0.0.1:{port}/webhooks/ats"  # where "Lever" delivers
    with serve_asgi(create_app(lever)) as vendor:
        config = tmp_path / "provisioner.yaml"
        config.write_text(
            json.dumps(
                {
                    "store": {"url": f"sqlite:///{tmp_path / 'engine.db'}"},
                    "engine": {"listen": f"127.0.0.1:{port}"},
                    "sources": [
                        {
                            "name": "ats",
                            "type": "lever",
                            "base_url": f"{vendor.url}/v1",
                            "api_key": lever.api_key,
                            "webhook_secret": lever.webhook_secret,
                            "poll_interval": "1h",
                        }
                    ],
                    "targets": [{"name": "app", "type": "scim", "base_url": scim_server.url}],
                    "policies": [{"name": "everyone", "when": "true", "grant": [{"target": "app"}]}],
                    "lifecycle": {"prehire_days": 60},
                }
            )
        )
        with engine_process(config):
            wait_for(lambda: answers(f"http://127.0.0.1:{port}/healthz"), timeout=60)
            forged = httpx.post(
                lever.webhook_url,
                json={
                    "token": "x",
                    "triggeredAt": int(time.time() * 1000),
                    "signature": "00",
                    "data": {"opportunityId": "y"},
                },
            )
            assert forged.status_code == 401 and forged.text == "unauthorized"
            start = (date.today() + timedelta(days=14)).isoformat()
            hired = httpx.post(
                f"{vendor.url}/_admin/hires",
                json={
                    "first_name": "Grace",
                    "last_name": "Hopper",
                    "personal_email": "grace@mail.example",
                    "start_date": start,
                },
            ).json()
            wait_for(lambda: any(u["externalId"] == f"ats:{hired['id']}" for u in scim_users(scim)), timeout=30)
