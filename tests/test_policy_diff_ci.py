"""examples/ci: the GitHub workflow's "diff and comment" step, run as the runner would run it, on a
two-commit git repository made here, with the GitHub API replaced by a local server that records
the comment it is sent."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from provisioner.engine.kit.servers import scim_app, serve_wsgi
from tests.test_policy_diff import EVERYONE, cli, engineering, people, write_config

EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "ci"


class CommentSink:
    """Records each POST: path, auth header, JSON body; answers 201 as GitHub does."""

    def __init__(self) -> None:
        self.posts: list[dict[str, Any]] = []

    def __call__(self, environ: dict[str, Any], start_response: Any) -> list[bytes]:
        size = int(environ.get("CONTENT_LENGTH") or 0)
        body = json.loads(environ["wsgi.input"].read(size) or b"{}")
        self.posts.append({"path": environ["PATH_INFO"], "auth": environ.get("HTTP_AUTHORIZATION"), "body": body})
        start_response("201 Created", [("Content-Type", "application/json")])
        return [b'{"id": 1}']


def git(repo: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True)


def step_of_workflow() -> dict[str, Any]:
    workflow = yaml.safe_load((EXAMPLES / "github-workflow.yml").read_text())
    steps = workflow["jobs"]["diff"]["steps"]
    return next(s for s in steps if "diff-comment.sh" in s.get("run", ""))


def expand(value: str, context: dict[str, str]) -> str:
    """GitHub's `${{ expr }}` with the values a pull-request run would have."""
    return re.sub(r"\$\{\{\s*([^}]+?)\s*\}\}", lambda m: context[m.group(1)], value)


def test_the_github_step_posts_the_diff_as_a_comment(tmp_path, scim_server):
    repo = tmp_path / "repo"
    repo.mkdir()
    source = tmp_path / "people.json"
    source.write_text(json.dumps(people(12)))
    url = f"sqlite:///{tmp_path / 's.db'}"
    config = repo / "provisioner.yaml"
    payroll_app = serve_wsgi(scim_app())
    payroll = {
        "targets": [{"name": "payroll", "type": "scim", "base_url": payroll_app.url}],
        "policies": [
            {"name": "sales-payroll", "when": "worker.department == 'Sales'", "grant": [{"target": "payroll"}]}
        ],
    }

    def commit(group: str) -> None:
        policies = [EVERYONE, engineering(group), *payroll["policies"]]
        write_config(config, url, source, scim_server.url, policies, targets=payroll["targets"])

    commit("eng")
    with payroll_app:  # only the first sync talks to the apps: diff never does
        synced = cli("sync", "-c", str(config))
    assert synced.exit_code == 0, synced.output
    exported = cli("population", "export", "-c", str(config), "-o", str(repo / "population.json"))
    assert exported.exit_code == 0, exported.output
    shutil.copytree(EXAMPLES, repo / "examples" / "ci")
    git(repo, "init", "-q", "-b", "main")
    git(repo, "-c", "user.name=t", "-c", "user.email=t@example.com", "add", "provisioner.yaml", "examples")
    git(repo, "-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-qm", "base")
    commit("eng-platform")
    git(repo, "-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-qam", "move engineering's group")

    sink = CommentSink()
    step = step_of_workflow()
    with serve_wsgi(sink) as api:
        context = {
            "github.base_ref": "main",
            "github.api_url": api.url,
            "github.repository": "acme/access",
            "github.event.pull_request.number": "7",
            "secrets.GITHUB_TOKEN": "test-token",
        }
        env = {k: expand(str(v), context) for k, v in step["env"].items()}
        env["BASE_REF"] = "HEAD~1"  # the checkout has no origin: the base commit by its place
        path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"
        ran = subprocess.run(
            ["sh", "-c", step["run"]],
            cwd=repo,
            env={**os.environ, **env, "PATH": path},
            capture_output=True,
            timeout=180,
        )
    assert ran.returncode == 0, ran.stderr.decode()
    assert len(sink.posts) == 1
    post = sink.posts[0]
    assert post["path"] == "/repos/acme/access/issues/7/comments"
    assert post["auth"] == "Bearer test-token"
    body = post["body"]["body"]
    assert "4 people affected of 12" in body and "groups granted" in body and "eng-platform" in body
    # The population file is pseudonymous: no name or email reaches the comment.
    assert "p0@example.com" not in body and "P0 Lee" not in body and "hr:0 " not in body
