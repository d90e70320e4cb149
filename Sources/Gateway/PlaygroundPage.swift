import Foundation

/// The playground at `GET /`: one self-contained page (no external scripts, fonts or styles, so it works on hosts
/// without network) that uses only the public API: `/v1/images/generations` streamed with partial images (the picture
/// fills in patch by patch), `/v1/chat/completions` streamed (text, or a question about an uploaded PNG), and
/// `/v1/cluster` for the cluster's state. Query parameters fill the form (`prompt`, `mode`, `seed`, `steps`) and
/// `run=1` submits it on load, which is how a link or a headless browser starts a generation.
enum PlaygroundPage {
    /// Partial images the page asks for: one per patch for small images, about 64 for large ones (each is a VQ decode
    /// in the gateway).
    static func partialImages(patches: Int) -> Int { min(patches - 1, 63) }

    struct Settings: Encodable {
        var model: String
        var side: Int
        var partialImages: Int
    }

    /// The page for `model`. (JSONEncoder escapes `/`, so no `</script>` can come out of the model's name.)
    static func html(model: ServedModel) throws -> String {
        let settings = Settings(
            model: model.id,
            side: model.imageSide,
            partialImages: partialImages(patches: model.patches)
        )
        let json = String(decoding: try JSONEncoder().encode(settings), as: UTF8.self)
        return template.replacingOccurrences(of: "{{SETTINGS}}", with: json)
    }

    static let template = #"""
        <!doctype html>
        <html lang="en">
        <head>
        <meta charset="utf-8">
        <meta name="viewport" content="width=device-width, initial-scale=1">
        <title>Orthus playground</title>
        <style>
          body { font: 15px/1.4 system-ui, sans-serif; margin: 0; background: #f6f6f4; color: #222; }
          header { padding: 10px 20px; background: #23303d; color: #fff; display: flex; gap: 16px;
                   align-items: center; }
          header b { font-size: 17px; }
          #ready { padding: 2px 8px; border-radius: 10px; background: #777; font-size: 13px; }
          #ready.yes { background: #2e8b57; } #ready.no { background: #b03a2e; }
          main { display: grid; grid-template-columns: 340px 300px minmax(380px, 1fr); gap: 20px; padding: 20px; }
          section { background: #fff; border: 1px solid #ddd; border-radius: 6px; padding: 14px; }
          label { display: block; margin: 8px 0 2px; font-size: 13px; color: #555; }
          textarea, input, select { width: 100%; box-sizing: border-box; font: inherit; padding: 5px; }
          textarea { height: 70px; }
          .row { display: flex; gap: 8px; } .row > div { flex: 1; }
          button { margin-top: 12px; padding: 8px 18px; font: inherit; background: #23303d; color: #fff;
                   border: 0; border-radius: 4px; cursor: pointer; }
          button:disabled { background: #999; }
          #picture { width: 256px; height: 256px; image-rendering: pixelated; background: #e0e0e0; display: block; }
          #answer { white-space: pre-wrap; min-height: 40px; margin-top: 10px; }
          #progress, .muted { color: #666; font-size: 13px; }
          #error { color: #b03a2e; white-space: pre-wrap; }
          table { border-collapse: collapse; font-size: 13px; }
          td { padding: 2px 8px 2px 0; white-space: nowrap; }
        </style>
        </head>
        <body>
        <header><b>Orthus</b><span id="model"></span><span id="ready">status unknown</span></header>
        <main>
          <section>
            <form id="form">
              <label for="mode">Task</label>
              <select id="mode">
                <option value="draw">Draw a picture</option>
                <option value="ask">Ask about a picture</option>
                <option value="text">Write text</option>
              </select>
              <label for="prompt">Prompt</label>
              <textarea id="prompt">a red circle</textarea>
              <div id="upload" hidden><label for="file">Picture (PNG)</label><input id="file" type="file"
                accept="image/png"></div>
              <div class="row">
                <div><label for="seed">Seed</label><input id="seed" type="number" value="0" min="0"></div>
                <div><label for="steps">DDIM steps</label><input id="steps" type="number" value="100" min="1"
                  max="1000"></div>
                <div><label for="tokens">Max tokens</label><input id="tokens" type="number" value="64" min="1"></div>
              </div>
              <label for="key">API key (if the gateway asks for one)</label>
              <input id="key" type="password" autocomplete="off">
              <button id="run" type="submit">Generate</button>
            </form>
          </section>
          <section>
            <img id="picture" alt="the generated picture">
            <div id="progress"></div>
            <div id="answer"></div>
            <div id="error"></div>
          </section>
          <section><b>Cluster</b><div id="cluster" class="muted">asking…</div></section>
        </main>
        <script>
        "use strict";
        const settings = {{SETTINGS}};
        const $ = (id) => document.getElementById(id);
        $("model").textContent = settings.model + " · " + settings.side + "×" + settings.side + " pictures";

        function headers() {
          const h = { "content-type": "application/json" };
          const key = $("key").value.trim() || localStorage.getItem("orthus-key") || "";
          if (key) { h.authorization = "Bearer " + key; localStorage.setItem("orthus-key", key); }
          return h;
        }

        // Reads server-sent events from a fetch response; calls onEvent(name, data) for each JSON event.
        async function readEvents(response, onEvent) {
          const reader = response.body.getReader();
          const decoder = new TextDecoder();
          let buffer = "";
          for (;;) {
            const { value, done } = await reader.read();
            if (done) break;
            buffer += decoder.decode(value, { stream: true });
            let end;
            while ((end = buffer.indexOf("\n\n")) >= 0) {
              const block = buffer.slice(0, end);
              buffer = buffer.slice(end + 2);
              let name = "message", data = "";
              for (const line of block.split("\n")) {
                if (line.startsWith("event: ")) name = line.slice(7);
                if (line.startsWith("data: ")) data += line.slice(6);
              }
              if (data && data !== "[DONE]") onEvent(name, JSON.parse(data));
            }
          }
        }

        async function failure(response) {
          try {
            return (await response.json()).error.message;
          } catch (e) {
            return response.status + " " + response.statusText;
          }
        }

        async function draw() {
          const body = {
            model: settings.model, prompt: $("prompt").value, size: settings.side + "x" + settings.side,
            stream: true, partial_images: settings.partialImages,
            seed: Number($("seed").value), steps: Number($("steps").value),
          };
          const response = await fetch("/v1/images/generations",
            { method: "POST", headers: headers(), body: JSON.stringify(body) });
          if (!response.ok) throw new Error(await failure(response));
          let partials = 0;
          await readEvents(response, (name, data) => {
            if (data.error) throw new Error(data.error.message);
            $("picture").src = "data:image/png;base64," + data.b64_json;
            if (name === "image_generation.partial_image") {
              partials += 1;
              $("progress").textContent =
                "drawing… " + partials + " of " + settings.partialImages + " partial pictures";
            } else if (name === "image_generation.completed") {
              $("progress").textContent = "done: " + data.usage.output_tokens + " patches";
              $("picture").dataset.done = "true";
            }
          });
        }

        function pictureURL() {
          const file = $("file").files[0];
          if (!file) return Promise.reject(new Error("choose a PNG picture to ask about"));
          return new Promise((resolve, reject) => {
            const reader = new FileReader();
            reader.onload = () => resolve(reader.result);
            reader.onerror = () => reject(reader.error);
            reader.readAsDataURL(file);
          });
        }

        async function chat(withPicture) {
          let content = $("prompt").value;
          if (withPicture) {
            const url = await pictureURL();
            $("picture").src = url;
            content = [{ type: "text", text: content }, { type: "image_url", image_url: { url } }];
          }
          const body = {
            model: settings.model, stream: true, max_tokens: Number($("tokens").value), seed: Number($("seed").value),
            messages: [{ role: "user", content }],
          };
          const response = await fetch("/v1/chat/completions",
            { method: "POST", headers: headers(), body: JSON.stringify(body) });
          if (!response.ok) throw new Error(await failure(response));
          await readEvents(response, (name, data) => {
            if (data.error) throw new Error(data.error.message);
            for (const choice of data.choices || []) {
              if (choice.delta && choice.delta.content) $("answer").textContent += choice.delta.content;
              if (choice.finish_reason) $("progress").textContent = "done (" + choice.finish_reason + ")";
            }
          });
          $("answer").dataset.done = "true";
        }

        $("mode").addEventListener("change", () => { $("upload").hidden = $("mode").value !== "ask"; });
        $("form").addEventListener("submit", async (event) => {
          event.preventDefault();
          $("run").disabled = true;
          for (const id of ["answer", "error", "progress"]) $(id).textContent = "";
          delete $("picture").dataset.done;
          delete $("answer").dataset.done;
          if ($("mode").value === "draw") $("picture").removeAttribute("src");
          $("progress").textContent = "waiting for the cluster…";
          try {
            const mode = $("mode").value;
            if (mode === "draw") await draw(); else await chat(mode === "ask");
          } catch (error) {
            $("error").textContent = error.message;
          }
          $("run").disabled = false;
          refreshCluster();
        });

        async function refreshCluster() {
          try {
            const response = await fetch("/v1/cluster", { headers: headers() });
            if (!response.ok) throw new Error(await failure(response));
            const c = await response.json();
            $("ready").textContent = c.ready ? "ready" : "not ready";
            $("ready").className = c.ready ? "yes" : "no";
            const rows = c.stages.map((s) => "<tr><td>stage " + s.layers + "</td><td>" + s.state
              + (s.slow ? ", slow" : "") + "</td><td>busy " + (s.busySeconds < 10
                ? (1000 * s.busySeconds).toFixed(0) + " ms" : s.busySeconds.toFixed(1) + " s") + "</td><td>KV "
              + s.kvPositions + "/" + s.kvBudget + "</td></tr>");
            $("cluster").innerHTML = "<table>" + rows.join("") + "</table><p>" + c.lmHeads + " LM-head, "
              + c.diffusionWorkers + " diffusion workers · " + c.running + " running, " + c.queued + " queued · "
              + c.completed + " done, " + c.failed + " failed</p>";
          } catch (error) {
            $("ready").textContent = "status unknown";
            $("ready").className = "";
            $("cluster").textContent = error.message;
          }
        }
        refreshCluster();
        setInterval(refreshCluster, 2000);

        const query = new URLSearchParams(location.search);
        for (const field of ["prompt", "mode", "seed", "steps", "tokens"]) {
          if (query.has(field)) $(field).value = query.get(field);
        }
        $("upload").hidden = $("mode").value !== "ask";
        if (query.get("run") === "1") $("form").requestSubmit();
        </script>
        </body>
        </html>
        """#
}
