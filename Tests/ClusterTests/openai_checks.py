"""The gateway from the outside, through OpenAI's own Python client: run by OpenAIClientTests against `orthus serve` on a
local cluster of the test checkpoint. Writes what it got to OUT/results.json and the generated PNGs to OUT/; the Swift
test compares them with `orthus generate`'s outputs.

    python3 openai_checks.py answers BASE_URL MODEL API_KEY OUT   (OUT/requests.json says what to ask)
    python3 openai_checks.py refusal BASE_URL MODEL API_KEY       (one chat request; prints its refusal as JSON)
    python3 openai_checks.py job BASE_URL API_KEY JOB              (state, events, cancel of a running job)
"""
import base64
import json
import sys

import urllib.error
import urllib.request
import openai
from openai import OpenAI



def refusal(call):
    try:
        call()
    except openai.APIStatusError as error:
        body = error.body if isinstance(error.body, dict) else {}
        return {"status": error.status_code, "code": body.get("code"), "param": body.get("param"),
                "message": body.get("message"), "retry_after": error.response.headers.get("retry-after")}
    return {"status": 200}


def http(method, url, key):
    """Status and body of a plain HTTP request (the job routes are this server's own, not OpenAI's)."""
    request = urllib.request.Request(url, method=method, headers={"authorization": f"Bearer {key}"})
    try:
        with urllib.request.urlopen(request) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


if sys.argv[1] == "job":
    base, key, job = sys.argv[2:5]
    found = {}
    status, body = http("GET", f"{base}/v1/jobs/{job}", key)
    found["state"] = {"status": status, **json.loads(body)}
    events = []
    request = urllib.request.Request(f"{base}/v1/jobs/{job}/events", headers={"authorization": f"Bearer {key}"})
    with urllib.request.urlopen(request) as stream:
        found["events_type"] = stream.headers.get("content-type")
        for line in stream:
            if line.startswith(b"data: "):
                events.append(json.loads(line[6:]))
            if len(events) == 3:
                break
    found["events"] = events
    status, body = http("DELETE", f"{base}/v1/jobs/{job}", key)
    found["delete"] = {"status": status, **json.loads(body)}
    status, body = http("GET", f"{base}/v1/jobs/{job}", key)
    found["after"] = {"status": status, **json.loads(body)}
    status, body = http("GET", f"{base}/v1/jobs/not-a-job", key)
    found["malformed"] = {"status": status, **json.loads(body)}
    print(json.dumps(found))
    sys.exit(0)

if sys.argv[1] == "refusal":
    base, model, key = sys.argv[2:5]
    client = OpenAI(base_url=base + "/v1", api_key=key, max_retries=0, timeout=120)
    print(json.dumps(refusal(lambda: client.chat.completions.create(
        model=model, messages=[{"role": "user", "content": "hi"}], max_tokens=2))))
    sys.exit(0)

base, model, key, out = sys.argv[2:6]
with open(f"{out}/requests.json") as f:
    asked = json.load(f)
client = OpenAI(base_url=base + "/v1", api_key=key, max_retries=0, timeout=120)
results = {}

with open(asked["question"]["picture"], "rb") as f:
    data_url = "data:image/png;base64," + base64.b64encode(f.read()).decode()
question = [
    {"role": "user", "content": [
        {"type": "text", "text": asked["question"]["prompt"]},
        {"type": "image_url", "image_url": {"url": data_url}},
    ]}
]
question_tokens = asked["question"]["max_tokens"]

# A chat completion about a picture, whole and streamed.
answer = client.chat.completions.create(model=model, messages=question, max_tokens=question_tokens)
results["question"] = {
    "content": answer.choices[0].message.content,
    "finish_reason": answer.choices[0].finish_reason,
    "usage": answer.usage.model_dump(),
    "id": answer.id,
}
pieces, finish, usage = [], None, None
for chunk in client.chat.completions.create(
    model=model, messages=question, max_tokens=question_tokens, stream=True, stream_options={"include_usage": True}
):
    if chunk.usage is not None:
        usage = chunk.usage.model_dump()
    for choice in chunk.choices:
        if choice.delta.content:
            pieces.append(choice.delta.content)
        if choice.finish_reason:
            finish = choice.finish_reason
results["question_streamed"] = {"content": "".join(pieces), "chunks": len(pieces), "finish_reason": finish,
                                "usage": usage}

# An interleaved answer: text with a generated picture as an image_url part.
wanted = asked["interleaved"]
story = client.chat.completions.create(
    model=model,
    messages=[{"role": "user", "content": wanted["prompt"]}],
    max_tokens=wanted["max_tokens"],
    temperature=wanted["temperature"],
    extra_body={"modalities": ["text", "image"], "steps": wanted["steps"]},
)
parts = story.choices[0].message.content
results["interleaved"] = {"parts": []}
for index, part in enumerate(parts):
    if part["type"] == "text":
        results["interleaved"]["parts"].append({"text": part["text"]})
    else:
        png = base64.b64decode(part["image_url"]["url"].split(",", 1)[1])
        with open(f"{out}/interleaved-{index}.png", "wb") as f:
            f.write(png)
        results["interleaved"]["parts"].append({"image": f"interleaved-{index}.png"})

# The same answer streamed: text runs as strings, pictures as image_url parts, in order.
results["interleaved_streamed"] = {"parts": [], "finish_reason": None}
for chunk in client.chat.completions.create(
    model=model,
    messages=[{"role": "user", "content": wanted["prompt"]}],
    max_tokens=wanted["max_tokens"],
    temperature=wanted["temperature"],
    stream=True,
    extra_body={"modalities": ["text", "image"], "steps": wanted["steps"]},
):
    for choice in chunk.choices:
        content = choice.delta.content
        if isinstance(content, str) and content:
            results["interleaved_streamed"]["parts"].append({"text": content})
        elif isinstance(content, list):
            for part in content:
                name = f"streamed-interleaved-{len(results['interleaved_streamed']['parts'])}.png"
                with open(f"{out}/{name}", "wb") as f:
                    f.write(base64.b64decode(part["image_url"]["url"].split(",", 1)[1]))
                results["interleaved_streamed"]["parts"].append({"image": name})
        if choice.finish_reason:
            results["interleaved_streamed"]["finish_reason"] = choice.finish_reason

# An image generation, as base64 and as a URL of the gateway's files.
drawing = asked["image"]
generated = client.images.generate(
    model=model, prompt=drawing["prompt"], size=drawing["size"], response_format="b64_json",
    extra_body={"seed": drawing["seed"], "steps": drawing["steps"]},
)
with open(f"{out}/generated.png", "wb") as f:
    f.write(base64.b64decode(generated.data[0].b64_json))
linked = client.images.generate(
    model=model, prompt=drawing["prompt"], size=drawing["size"], response_format="url",
    extra_body={"seed": drawing["seed"], "steps": drawing["steps"]},
)
with open(f"{out}/linked.png", "wb") as f:
    f.write(urllib.request.urlopen(urllib.request.Request(
        base + linked.data[0].url, headers={"authorization": f"Bearer {key}"})).read())

# The same image streamed: partial pictures as its patches are sampled, then the finished one.
results["image_streamed"] = []
for event in client.images.generate(
    model=model, prompt=drawing["prompt"], size=drawing["size"], stream=True,
    partial_images=drawing["partial_images"], extra_body={"seed": drawing["seed"], "steps": drawing["steps"]},
):
    name = f"streamed-{len(results['image_streamed'])}.png"
    with open(f"{out}/{name}", "wb") as f:
        f.write(base64.b64decode(event.b64_json))
    results["image_streamed"].append({
        "type": event.type, "file": name, "size": event.size,
        "index": getattr(event, "partial_image_index", None),
        "output_tokens": event.usage.output_tokens if event.type == "image_generation.completed" else None,
    })

# Refusals, each with OpenAI's error body and its status.
results["errors"] = {
    "unknown_model": refusal(lambda: client.chat.completions.create(
        model="gpt-4o", messages=[{"role": "user", "content": "hi"}])),
    "wrong_size": refusal(lambda: client.images.generate(model=model, prompt="a cat", size="1024x1792")),
    "too_many_partials": refusal(lambda: client.images.generate(
        model=model, prompt="a cat", stream=True, partial_images=10000)),
    "remote_image": refusal(lambda: client.chat.completions.create(model=model, messages=[{"role": "user", "content": [
        {"type": "text", "text": "what is this?"},
        {"type": "image_url", "image_url": {"url": "http://10.0.0.1/cat.png"}}]}])),
    "context": refusal(lambda: client.chat.completions.create(
        model=model, messages=[{"role": "user", "content": "count " * 400}])),
    "bad_temperature": refusal(lambda: client.chat.completions.create(
        model=model, messages=[{"role": "user", "content": "hi"}], temperature=-1)),
}
try:
    urllib.request.urlopen(urllib.request.Request(
        base + "/v1/chat/completions", data=b"{not json", method="POST",
        headers={"content-type": "application/json", "authorization": f"Bearer {key}"}))
    results["errors"]["bad_json"] = {"status": 200}
except urllib.error.HTTPError as error:
    results["errors"]["bad_json"] = {"status": error.code, **json.loads(error.read())["error"]}
results["models"] = [m.id for m in client.models.list()]

with open(f"{out}/results.json", "w") as f:
    json.dump(results, f, indent=1)
