"""Every orthus command line in the deployment files, for DeploymentFilesTests: the containers of rendered Kubernetes
objects (their args, or the `exec orthus ...` line of a shell script) and the ExecStart lines of systemd units.
Prints JSON: [{"where": ..., "role": ..., "flags": [...]}, ...].

    python3 deployment_commands.py RENDERED.yaml UNIT.service ...
"""
import json
import shlex
import sys

import yaml


def command(where, words):
    """The role and flags of one orthus command line (words after the program name)."""
    role = words[0] if words else ""
    flags = sorted({word.split("=", 1)[0] for word in words[1:] if word.startswith("--")})
    return {"where": where, "role": role, "flags": flags}


def from_script(where, script):
    """An `exec orthus ...` line of a shell script, joined across backslash-newlines."""
    words = shlex.split(script.replace("\\\n", " "), comments=True)
    found = []
    for index, word in enumerate(words):
        if word.endswith("orthus") and index > 0 and words[index - 1] == "exec":
            end = index + 1
            while end < len(words) and words[end] not in ("&&", "||", ";"):
                end += 1
            found.append(command(where, words[index + 1:end]))
    return found


found = []
with open(sys.argv[1]) as f:
    for document in yaml.safe_load_all(f):
        if not document:
            continue
        spec = document.get("spec", {})
        pod = spec.get("template", {}).get("spec", {})
        for container in pod.get("containers", []):
            where = f"{document['kind']}/{document['metadata']['name']}/{container['name']}"
            if container.get("command", [None])[0] == "/bin/sh":
                found += from_script(where, container["args"][0])
            else:
                found.append(command(where, container.get("args", [])))
for unit in sys.argv[2:]:
    with open(unit) as f:
        for line in f:
            if line.startswith("ExecStart="):
                words = shlex.split(line[len("ExecStart="):])
                found.append(command(unit, words[1:]))
print(json.dumps(found))
