#!/usr/bin/env python3
"""Writes the shapes evaluation set that `orthus eval` runs (cluster/eval/shapes):

  set.json            the world (image size, background, palette, anchors), the prompts (held-out configurations,
                      with the objects and relation a correct picture shows) and the questions (about pictures of
                      held-out configurations, each with its one-word answer)
  images/q-NNN.png    the pictures the questions are about
  detector-check.png  a sheet of rendered scenes of every kind, and detector-check.json what each tile shows: the
                      ground truth on which the detector's accuracy is tested

and a validation set of the same form (cluster/eval/shapes-validation) over configurations training did show, on
which inference settings are chosen.

    python ops/train/make_eval_set.py --out cluster/eval/shapes --validation-out cluster/eval/shapes-validation
"""

import argparse
import json
import random
from pathlib import Path

import numpy as np
from PIL import Image

import world


def object_record(o) -> dict:
    return {"colour": o.thing.colour, "shape": o.thing.shape, "position": o.position}


def prompts(held_positions: set, held_pairs: set, seed_base: int = 0) -> list:
    out = []
    for i, thing in enumerate(world.all_things()):
        out.append({"category": "single object", "prompt": f"a {thing.phrase()}", "objects": [
            {"colour": thing.colour, "shape": thing.shape}], "relation": None, "seed": seed_base + 100 + i})
    for i, (thing, position) in enumerate(sorted(held_positions, key=lambda c: world.position_caption(*c))):
        out.append({"category": "position", "prompt": world.position_caption(thing, position), "objects": [
            {"colour": thing.colour, "shape": thing.shape, "position": position}], "relation": None, "seed": seed_base + 200 + i})
    for i, (a, relation, b) in enumerate(sorted(held_pairs, key=lambda c: world.pair_caption(*c))):
        out.append({"category": "two objects", "prompt": world.pair_caption(a, relation, b), "objects": [
            {"colour": a.colour, "shape": a.shape}, {"colour": b.colour, "shape": b.shape}],
            "relation": relation, "seed": seed_base + 300 + i})
    for n, p in enumerate(out):
        p["id"] = f"p-{n:03d}"
    return out


def questions(held_positions: set, held_pairs: set, images: Path, rng: random.Random) -> list:
    """Two questions of different kinds about each of 60 pictures of held-out configurations."""
    out = []
    singles = sorted(held_positions, key=lambda c: world.position_caption(*c))
    pairs = sorted(held_pairs, key=lambda c: world.pair_caption(*c))
    scenes = [world.single_scene(t, p, rng) for t, p in singles + singles]
    scenes += [world.pair_scene(a, r, b, rng) for a, r, b in rng.sample(pairs, 60 - len(scenes))]
    for k, objects in enumerate(scenes):
        name = f"q-{k:03d}.png"
        Image.fromarray(world.render(objects)).save(images / name, optimize=True)
        asked = rng.sample(world.questions(objects), 2)
        for category, question, answer in asked:
            out.append({"id": f"q-{len(out):03d}", "category": category, "image": f"images/{name}",
                        "question": question, "answer": answer})
    return out


def detector_check(out: Path, rng: random.Random, tiles: int = 20):
    """A tiles x tiles sheet of scenes from every configuration (held out or not) and what each shows."""
    truth, rows = [], []
    for r in range(tiles):
        row = []
        for c in range(tiles):
            objects, caption = world.random_scene(rng, set(), set())
            relation = next((rel for rel in world.RELATIONS if f" {rel} " in caption), None)
            truth.append({"tile": r * tiles + c, "caption": caption, "relation": relation,
                          "objects": [object_record(o) for o in objects]})
            row.append(world.render(objects))
        rows.append(np.concatenate(row, axis=1))
    Image.fromarray(np.concatenate(rows, axis=0)).save(out / "detector-check.png", optimize=True)
    (out / "detector-check.json").write_text(json.dumps({"tile": world.SIZE, "tiles": truth}, indent=1) + "\n")


def write_set(out: Path, positions: set, pairs: set, rng: random.Random, seed_base: int):
    images = out / "images"
    images.mkdir(parents=True, exist_ok=True)
    spec = {
        "size": world.SIZE,
        "background": list(world.BACKGROUND),
        "colours": {name: list(rgb) for name, rgb in world.COLOURS.items()},
        "anchors": {name: list(xy) for name, xy in world.POSITIONS.items()},
        "prompts": prompts(positions, pairs, seed_base),
        "questions": questions(positions, pairs, images, rng),
    }
    (out / "set.json").write_text(json.dumps(spec, indent=1) + "\n")
    print(f"wrote {len(spec['prompts'])} prompts and {len(spec['questions'])} questions to {out}")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--validation-out", type=Path, required=True)
    args = parser.parse_args()
    held_positions, held_pairs = world.held_out()
    write_set(args.out, held_positions, held_pairs, random.Random(7), 0)
    detector_check(args.out, random.Random(11))
    # The validation set asks for as many configurations that training did show, with other seeds: inference
    # settings (the guidance scale) are chosen on it, never on the held-out set.
    rng = random.Random(8)
    seen_positions = sorted(set(world.position_configs()) - held_positions, key=lambda c: world.position_caption(*c))
    seen_pairs = sorted(set(world.pair_configs()) - held_pairs, key=lambda c: world.pair_caption(*c))
    write_set(
        args.validation_out, set(rng.sample(seen_positions, len(held_positions))),
        set(rng.sample(seen_pairs, len(held_pairs))), rng, 1000,
    )


if __name__ == "__main__":
    main()
