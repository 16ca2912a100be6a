#!/bin/sh
# `provisioner diff` of a merge request's config against its base, posted as a comment.
# The GitHub workflow and the GitLab job both run this; they differ only in the environment:
#   CONFIG        the config file, as in the repository (default provisioner.yaml)
#   BASE_REF      the git ref to compare with (the PR's or MR's target branch)
#   DIFF_ARGS     more arguments for diff: --population FILE or --store URL, --fail-on ...
#   POST_URL      where the comment goes (GitHub: .../issues/N/comments; GitLab: .../merge_requests/N/notes)
#   POST_AUTH     the auth header line for that URL ("Authorization: Bearer ..." or "PRIVATE-TOKEN: ...")
# Exit: diff's own code (0 nothing tripped, 1 a gate or a test tripped, 2 bad input), after posting.
set -u
CONFIG="${CONFIG:-provisioner.yaml}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

# DIFF_ARGS is split on spaces on purpose: several flags in one variable.
# shellcheck disable=SC2086
provisioner diff -c "$CONFIG" --base-ref "$BASE_REF" --markdown ${DIFF_ARGS:-} >"$work/comment.md"
code=$?
if [ "$code" -ge 2 ]; then
  echo "provisioner diff could not run (exit $code); nothing posted" >&2
  exit "$code"
fi

# Both APIs take {"body": "..."}; python3 is there wherever provisioner is.
python3 -c 'import json, sys; json.dump({"body": open(sys.argv[1]).read()}, sys.stdout)' \
  "$work/comment.md" >"$work/comment.json"
curl --silent --show-error --fail --request POST \
  --header "$POST_AUTH" --header "Content-Type: application/json" \
  --data-binary "@$work/comment.json" "$POST_URL" >/dev/null || {
  echo "the comment could not be posted to the merge request" >&2
  exit 2
}
exit "$code"
