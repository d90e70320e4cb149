"""The playground page in a real browser: headless Chromium, driven over the DevTools protocol on a pipe (no extra
packages). Opens the page, types a prompt, clicks Generate as a user would, watches the picture fill in, and writes:

    OUT/picture.png     the picture the page shows at the end (its data URL's bytes)
    OUT/screenshot.png  the page as the user sees it
    OUT/results.json    the picture's successive sources (how many partial pictures it showed), the progress line,
                        the cluster panel's text

    python3 playground_check.py CHROMIUM PAGE_URL PROMPT SEED STEPS KEY OUT
"""
import base64
import json
import os
import subprocess
import sys
import tempfile
import time

chromium, url, prompt, seed, steps, key, out = sys.argv[1:8]
profile = tempfile.mkdtemp(prefix="playground-chromium-")
# The DevTools pipe: Chromium reads commands on its fd 3 and writes replies on its fd 4.
to_browser_read, to_browser_write = os.pipe()
from_browser_read, from_browser_write = os.pipe()


def child_fds():
    # Copies first: a pipe end may itself be fd 3 or 4. dup2 makes the targets survive exec.
    read, write = os.dup(to_browser_read), os.dup(from_browser_write)
    os.dup2(read, 3)
    os.dup2(write, 4)


browser = subprocess.Popen(
    [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--remote-debugging-pipe",
     "--window-size=1200,520", f"--user-data-dir={profile}", "--no-first-run", "about:blank"],
    close_fds=False, preexec_fn=child_fds,
    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
)
os.close(to_browser_read)
os.close(from_browser_write)
writer = os.fdopen(to_browser_write, "wb", buffering=0)
reader = os.fdopen(from_browser_read, "rb")
buffered = b""
next_id = 0


class BrowserError(Exception):
    pass


def call(method, session=None, **params):
    """Sends one command and returns its result; events in between are skipped."""
    global buffered, next_id
    next_id += 1
    message = {"id": next_id, "method": method, "params": params}
    if session:
        message["sessionId"] = session
    writer.write(json.dumps(message).encode() + b"\0")
    while True:
        while b"\0" not in buffered:
            chunk = reader.read1(1 << 16)
            if not chunk:
                raise SystemExit(f"chromium closed the pipe during {method}")
            buffered += chunk
        raw, buffered = buffered.split(b"\0", 1)
        reply = json.loads(raw)
        if reply.get("id") == next_id:
            if "error" in reply:
                raise BrowserError(f"{method}: {reply['error']}")
            return reply["result"]


def evaluate(session, expression):
    result = call("Runtime.evaluate", session, expression=expression, awaitPromise=True, returnByValue=True)
    if "exceptionDetails" in result:
        raise SystemExit(f"page script failed: {result['exceptionDetails']}")
    return result["result"].get("value")


try:
    target = call("Target.createTarget", url=url)["targetId"]
    session = call("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
    # Wait for the page (the first tries may meet the navigation's first page).
    for attempt in range(100):
        try:
            if evaluate(session, 'document.readyState === "complete" && document.getElementById("key") !== null'):
                break
        except BrowserError:
            pass
        time.sleep(0.1)
    else:
        raise SystemExit(f"the page at {url} did not load")
    # Remember every picture the page shows from now on.
    # (A record per change, each with the value it replaced: the last value is the element's own.)
    evaluate(session, """window.replaced = []; new MutationObserver((records) => {
        for (const record of records) if (record.oldValue) window.replaced.push(record.oldValue);
      }).observe(document.getElementById("picture"),
                 { attributes: true, attributeFilter: ["src"], attributeOldValue: true }); true""")

    def click(element):
        box = evaluate(session, f"""(() => {{ const r = document.getElementById("{element}").getBoundingClientRect();
            return [r.x + r.width / 2, r.y + r.height / 2]; }})()""")
        for kind in ("mousePressed", "mouseReleased"):
            call("Input.dispatchMouseEvent", session, type=kind, x=box[0], y=box[1], button="left", clickCount=1)

    # Type the key, prompt and seed as a user would: click in the field, select what is there, type over it.
    for field, text in (("key", key), ("prompt", prompt), ("seed", seed), ("steps", steps)):
        click(field)
        evaluate(session, f'document.getElementById("{field}").select(); true')
        call("Input.insertText", session, text=text)
    # The cluster panel, asked with the key, says the cluster is ready.
    evaluate(session, """new Promise((done) => { const t = setInterval(() => {
        if (document.getElementById("ready").textContent === "ready") { clearInterval(t); done(true); } }, 100); })""")
    click("run")
    evaluate(session, """new Promise((done) => { const t = setInterval(() => {
        const failed = document.getElementById("error").textContent;
        if (document.getElementById("picture").dataset.done || failed) { clearInterval(t); done(true); } }, 100); })""")
    found = evaluate(session, """({
        shown: window.replaced.concat([document.getElementById("picture").getAttribute("src") || ""])
          .filter((src) => src !== ""),
        progress: document.getElementById("progress").textContent,
        error: document.getElementById("error").textContent,
        cluster: document.getElementById("cluster").textContent,
        prompt: document.getElementById("prompt").value })""")
    final = found["shown"][-1] if found["shown"] else ""
    if final.startswith("data:image/png;base64,"):
        with open(f"{out}/picture.png", "wb") as f:
            f.write(base64.b64decode(final.split(",", 1)[1]))
    shot = call("Page.captureScreenshot", session, format="png")
    with open(f"{out}/screenshot.png", "wb") as f:
        f.write(base64.b64decode(shot["data"]))
    found["shown"] = len(found["shown"])
    with open(f"{out}/results.json", "w") as f:
        json.dump(found, f, indent=1)
    call("Browser.close")
finally:
    browser.wait(timeout=30) if browser.poll() is not None else browser.kill()
