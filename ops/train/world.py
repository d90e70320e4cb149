"""The shapes world: scenes of one or two flat-coloured shapes, their captions and one-word questions.

Images are 32x32 RGB on white. Colours, shapes and layouts come from short fixed lists so that a deterministic
detector (`orthus eval`) can check a generated picture, and some configurations are held out of training so the
evaluation asks for compositions the model never saw.
"""

import random
from dataclasses import dataclass

import numpy as np

SIZE = 32
SUPERSAMPLE = 4
BACKGROUND = (255, 255, 255)
COLOURS = {"red": (220, 40, 40), "green": (40, 160, 60), "blue": (40, 80, 220), "yellow": (235, 190, 30)}
SHAPES = ("circle", "square", "triangle")
# Anchor centres of single objects, in pixels.
POSITIONS = {"left": (9.0, 16.0), "right": (23.0, 16.0), "top": (16.0, 9.0), "bottom": (16.0, 23.0), "centre": (16.0, 16.0)}
POSITION_PHRASES = {"left": "on the left", "right": "on the right", "top": "at the top", "bottom": "at the bottom", "centre": "in the centre"}
# A relation places the first object at the first anchor and the second at the second.
RELATIONS = {"above": ("top", "bottom"), "below": ("bottom", "top"), "to the left of": ("left", "right"), "to the right of": ("right", "left")}
NULL_PROMPT = "Generate an image."  # the engine's unconditional text-to-image prompt
INTERLEAVED_NULL_PROMPT = "generate images"  # and its interleaved one
NUMBERS = {1: "one", 2: "two"}


@dataclass(frozen=True)
class Thing:
    colour: str
    shape: str

    def phrase(self) -> str:
        return f"{self.colour} {self.shape}"


@dataclass
class Placed:
    thing: Thing
    cx: float
    cy: float
    radius: float
    position: str


def all_things() -> list:
    return [Thing(c, s) for c in COLOURS for s in SHAPES]


# ---------------------------------------------------------------------------------------------------------------------
# Configurations and the held-out split


def position_configs() -> list:
    """(thing, position) pairs: one object at a named place."""
    return [(t, p) for t in all_things() for p in POSITIONS]


def pair_configs() -> list:
    """(first, relation, second) with two different things."""
    things = all_things()
    return [(a, r, b) for a in things for b in things if a != b for r in RELATIONS]


def _layout_key(config) -> tuple:
    """A pair config and its mirror ("A above B", "B below A") draw the same picture: they share a key."""
    a, relation, b = config
    first, second = RELATIONS[relation]
    placed = sorted([(first, a.colour, a.shape), (second, b.colour, b.shape)])
    return tuple(placed)


def held_out() -> tuple:
    """The position and pair configurations that training never shows (the same on every run)."""
    rng = random.Random(20261124)
    positions = position_configs()
    rng.shuffle(positions)
    held_positions = set(positions[:12])
    layouts = sorted({_layout_key(c) for c in pair_configs()})
    rng.shuffle(layouts)
    held_layouts = set(layouts[: len(layouts) // 6])
    held_pairs = {c for c in pair_configs() if _layout_key(c) in held_layouts}
    return held_positions, held_pairs


# ---------------------------------------------------------------------------------------------------------------------
# Captions and scenes


def position_caption(thing: Thing, position: str) -> str:
    return f"a {thing.phrase()} {POSITION_PHRASES[position]}"


def pair_caption(a: Thing, relation: str, b: Thing) -> str:
    return f"a {a.phrase()} {relation} a {b.phrase()}"


def place(thing: Thing, position: str, rng: random.Random, radius: tuple, jitter: float) -> Placed:
    x, y = POSITIONS[position]
    return Placed(thing, x + rng.uniform(-jitter, jitter), y + rng.uniform(-jitter, jitter), rng.uniform(*radius), position)


def single_scene(thing: Thing, position: str, rng: random.Random) -> list:
    return [place(thing, position, rng, (5.0, 6.5), 1.5)]


def pair_scene(a: Thing, relation: str, b: Thing, rng: random.Random) -> list:
    first, second = RELATIONS[relation]
    # The two objects share their cross-axis offset, so "above" is never confused with "left of".
    offset = rng.uniform(-1.5, 1.5)
    objects = []
    for thing, position in ((a, first), (b, second)):
        o = place(thing, position, rng, (4.5, 6.0), 1.0)
        if position in ("top", "bottom"):
            o.cx = POSITIONS[position][0] + offset
        else:
            o.cy = POSITIONS[position][1] + offset
        objects.append(o)
    return objects


# ---------------------------------------------------------------------------------------------------------------------
# Rendering


def _mask(o: Placed, xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
    r = o.radius
    dx, dy = xs - o.cx, ys - o.cy
    if o.thing.shape == "circle":
        return dx * dx + dy * dy <= r * r
    if o.thing.shape == "square":
        half = r * 0.9
        return (np.abs(dx) <= half) & (np.abs(dy) <= half)
    # An upward isosceles triangle inside the circle's box: apex at the top, base at the bottom.
    top, bottom = o.cy - r, o.cy + r
    t = (ys - top) / (bottom - top)
    return (ys >= top) & (ys <= bottom) & (np.abs(dx) <= t * r)


_COORDS = (np.arange(SIZE * SUPERSAMPLE) + 0.5) / SUPERSAMPLE


def render(objects: list) -> np.ndarray:
    """uint8 [32, 32, 3]; edges anti-aliased by 4x4 supersampling."""
    n = SIZE * SUPERSAMPLE
    canvas = np.empty((n, n, 3), np.float32)
    canvas[:] = BACKGROUND
    for o in objects:
        # Only the object's box is tested, in supersampled pixels.
        lo_x, hi_x = max(0, int((o.cx - o.radius - 1) * SUPERSAMPLE)), min(n, int((o.cx + o.radius + 1) * SUPERSAMPLE))
        lo_y, hi_y = max(0, int((o.cy - o.radius - 1) * SUPERSAMPLE)), min(n, int((o.cy + o.radius + 1) * SUPERSAMPLE))
        xs, ys = np.meshgrid(_COORDS[lo_x:hi_x], _COORDS[lo_y:hi_y])
        canvas[lo_y:hi_y, lo_x:hi_x][_mask(o, xs, ys)] = COLOURS[o.thing.colour]
    pooled = canvas.reshape(SIZE, SUPERSAMPLE, SIZE, SUPERSAMPLE, 3).mean(axis=(1, 3))
    return np.clip(np.round(pooled), 0, 255).astype(np.uint8)


# ---------------------------------------------------------------------------------------------------------------------
# Questions with one-word answers


def questions(objects: list) -> list:
    """Every unambiguous question about a scene, as (category, question, answer)."""
    out = [("count", "how many objects are there?", NUMBERS[len(objects)])]
    for o in objects:
        same_shape = [p for p in objects if p.thing.shape == o.thing.shape]
        same_colour = [p for p in objects if p.thing.colour == o.thing.colour]
        if len(same_shape) == 1:
            out.append(("colour", f"what colour is the {o.thing.shape}?", o.thing.colour))
        if len(same_colour) == 1:
            out.append(("shape", f"what shape is the {o.thing.colour} object?", o.thing.shape))
        out.append(("position", f"where is the {o.thing.phrase()}?", o.position))
    return out


# ---------------------------------------------------------------------------------------------------------------------
# Training examples


@dataclass
class Example:
    kind: str  # "t2i", "vqa" or "interleaved"
    image: np.ndarray
    prompt: str  # caption (t2i, interleaved) or question (vqa)
    answer: str  # vqa answer, or the interleaved text after the image; "" for t2i


def random_scene(rng: random.Random, held_positions: set, held_pairs: set) -> tuple:
    """(objects, caption) from a training configuration; one object 40% of the time, two otherwise (binding two
    objects is the harder skill)."""
    things = all_things()
    if rng.random() < 0.4:
        while True:
            thing, position = rng.choice(things), rng.choice(list(POSITIONS))
            if (thing, position) not in held_positions:
                break
        objects = single_scene(thing, position, rng)
        caption = position_caption(thing, position) if rng.random() < 0.75 else f"a {thing.phrase()}"
        return objects, caption
    while True:
        a, b = rng.sample(things, 2)
        relation = rng.choice(list(RELATIONS))
        if (a, relation, b) not in held_pairs:
            break
    return pair_scene(a, relation, b, rng), pair_caption(a, relation, b)


def training_example(rng: random.Random, held_positions: set, held_pairs: set) -> Example:
    objects, caption = random_scene(rng, held_positions, held_pairs)
    image = render(objects)
    roll = rng.random()
    if roll < 0.45:
        return Example("t2i", image, caption, "")
    if roll < 0.9:
        _, question, answer = rng.choice(questions(objects))
        return Example("vqa", image, question, answer)
    return Example("interleaved", image, f"draw {caption}.", f"here is {caption}.")


def tokenizer_corpus() -> list:
    """Every phrase the world uses, for learning the BPE merges."""
    lines = [NULL_PROMPT, INTERLEAVED_NULL_PROMPT]
    for thing, position in position_configs():
        caption = position_caption(thing, position)
        lines += [caption, f"a {thing.phrase()}", f"draw {caption}.", f"here is {caption}."]
    for a, relation, b in pair_configs():
        caption = pair_caption(a, relation, b)
        lines += [caption, f"draw {caption}.", f"here is {caption}."]
    rng = random.Random(5)
    for _ in range(400):
        objects, _ = random_scene(rng, set(), set())
        lines += [q for _, q, _ in questions(objects)] + [a for _, _, a in questions(objects)]
    return lines
