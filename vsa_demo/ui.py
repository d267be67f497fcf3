"""The Gradio layout: Encode, Swap, Sketch & upload and About tabs, wired to ``handlers``.

Every control updates its outputs live, without a submit button. The events a script would call
carry API names: ``/render``, ``/encode`` and ``/swap``.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import gradio as gr
from PIL import Image

from . import handlers
from .factors import FACTOR_NAMES, SHAPE_NAMES
from .handlers import MAX_SCENE_OBJECTS, Models, SpriteChoice
from .sprite_io import HOW_IT_WORKS, SpriteInputError, sprite_from_file, sprite_from_sketch

logger = logging.getLogger(__name__)

ORIENTATION_STEP_DEGREES = 360.0 / 39.0
POSITION_STEP = 1.0 / 31.0
SOURCES = ["factors", "image"]
LIVE = {"show_progress": "hidden", "trigger_mode": "always_last"}

INTRO = """# dSprites VSA
Each sprite is encoded as **five 1024-dimensional feature vectors**, one per factor
(shape, scale, orientation, posX, posY); their sum is decoded back to an image. Exchange single
vectors between sprites and watch the decoder draw the result. Controls snap to the dSprites grid.
"""


@dataclass
class SpritePicker:
    """Controls that choose one sprite: its factors, or an image sent from the Sketch tab."""

    shape: gr.Dropdown
    scale: gr.Slider
    orientation: gr.Slider
    pos_x: gr.Slider
    pos_y: gr.Slider
    source: gr.Radio
    custom: gr.State
    random: gr.Button

    @property
    def factors(self) -> list:
        return [self.shape, self.scale, self.orientation, self.pos_x, self.pos_y]

    @property
    def triggers(self) -> list:
        return [c.change for c in self.factors] + [self.source.change, self.custom.change]


def sprite_picker(label: str, start: tuple[str, float, float, float, float]) -> SpritePicker:
    """Lay out the controls of one sprite; ``start`` gives shape, scale, degrees, posX and posY."""
    shape, scale, degrees, x, y = start
    key = label.replace(" ", "-")
    with gr.Group():
        with gr.Row():
            shape_box = gr.Dropdown(list(SHAPE_NAMES), value=shape, label=f"{label} shape", min_width=120)
            source = gr.Radio(SOURCES, value="factors", label=f"{label} source", info="'image' uses a sketch or upload", min_width=160, elem_id=f"{key}-source")
        scale_slider = gr.Slider(0.5, 1.0, value=scale, step=0.1, label=f"{label} scale", elem_id=f"{key}-scale")
        orientation = gr.Slider(0.0, 360.0, value=degrees, step=ORIENTATION_STEP_DEGREES, label=f"{label} orientation (degrees)")
        pos_x = gr.Slider(0.0, 1.0, value=x, step=POSITION_STEP, label=f"{label} posX (0 = left)")
        pos_y = gr.Slider(0.0, 1.0, value=y, step=POSITION_STEP, label=f"{label} posY (0 = top)")
        random = gr.Button(f"Random {label}", size="sm")
    custom = gr.State(None)
    picker = SpritePicker(shape_box, scale_slider, orientation, pos_x, pos_y, source, custom, random)

    # Touching a factor control switches the picker back to the grid; programmatic changes do not.
    for control in picker.factors:
        control.input(lambda: "factors", None, source, queue=False, api_visibility="private")
    random.click(_random_picker, None, picker.factors + [source], queue=False, api_visibility="private")
    return picker


def _random_picker():
    return (*handlers.random_values(), "factors")


def _choice(source, shape, scale, orientation, pos_x, pos_y, custom) -> SpriteChoice:
    try:
        return SpriteChoice.from_ui(source, shape, scale, orientation, pos_x, pos_y, custom)
    except ValueError as error:
        raise gr.Error(str(error), print_exception=False) from None


def build_demo(models: Models) -> gr.Blocks:
    """Build the Blocks of the app around loaded models; nothing runs until it is launched."""

    def render_sprite(shape="heart", scale=1.0, orientation=0.0, pos_x=0.5, pos_y=0.5, source="factors", custom=None):
        """Render the chosen sprite (or show the chosen image) as a 256x256 picture."""
        return handlers.display(_choice(source, shape, scale, orientation, pos_x, pos_y, custom).image)

    def encode(shape="heart", scale=1.0, orientation=0.0, pos_x=0.5, pos_y=0.5, source="factors", custom=None):
        """Encode a sprite: reconstruction, feature-vector heatmap and per-slot cleanup readout."""
        choice = _choice(source, shape, scale, orientation, pos_x, pos_y, custom)
        _, reconstruction, heatmap, rows = handlers.encode_handler(models, choice)
        return reconstruction, heatmap, rows

    def swap(features, a_shape, a_scale, a_orientation, a_x, a_y, b_shape, b_scale, b_orientation, b_x, b_y,
             a_source="factors", b_source="factors", a_custom=None, b_custom=None):
        """Decode sprite A with the chosen features taken from sprite B."""
        a = _choice(a_source, a_shape, a_scale, a_orientation, a_x, a_y, a_custom)
        b = _choice(b_source, b_shape, b_scale, b_orientation, b_x, b_y, b_custom)
        try:
            return handlers.swap_handler(models, a, b, list(features or []))
        except ValueError as error:
            raise gr.Error(str(error), print_exception=False) from None

    with gr.Blocks(title="dSprites VSA") as demo:
        gr.Markdown(INTRO)
        with gr.Tabs() as tabs:
            with gr.Tab("Encode", id="encode"):
                with gr.Row():
                    with gr.Column(scale=1, min_width=300):
                        encode_picker = sprite_picker("sprite", ("heart", 1.0, 0.0, 0.5, 0.5))
                    with gr.Column(scale=2):
                        with gr.Row():
                            sprite = gr.Image(label="sprite", type="numpy", image_mode="L", format="png", interactive=False, height=256)
                            reconstruction = gr.Image(label="reconstruction", type="numpy", image_mode="L", format="png", interactive=False, height=256)
                        heatmap = gr.Image(label="feature vectors (shape, scale, orientation, posX, posY); blue < 0 < red", type="numpy", interactive=False)
                        readout = gr.Dataframe(
                            headers=["slot", "closest value", "cosine similarity", "true value"],
                            type="array",
                            label="cleanup: each slot against per-value prototypes of its factor",
                            interactive=False,
                        )
            with gr.Tab("Swap", id="swap"):
                features = gr.CheckboxGroup(list(FACTOR_NAMES), value=["shape"], label="features to take from B", elem_id="swap-features")
                with gr.Row():
                    with gr.Column(min_width=260):
                        picker_a = sprite_picker("A", ("square", 0.8, 0.0, 0.25, 0.5))
                    with gr.Column(min_width=260):
                        picker_b = sprite_picker("B", ("heart", 1.0, 0.0, 0.75, 0.5))
                with gr.Row():
                    shown_a = gr.Image(label="A", type="numpy", image_mode="L", format="png", interactive=False, height=200)
                    shown_b = gr.Image(label="B", type="numpy", image_mode="L", format="png", interactive=False, height=200)
                    result = gr.Image(label="decoded: A with features from B", type="numpy", image_mode="L", format="png", interactive=False, height=200, elem_id="swap-result")
                    truth = gr.Image(label="rendered truth", type="numpy", image_mode="L", format="png", interactive=False, height=200)
                summary = gr.Markdown(elem_id="swap-summary")
            scene = scene_tab(models) if models.has_scenes else None
            with gr.Tab("Sketch & upload", id="sketch"):
                gr.Markdown(f"Draw a sprite or upload an image. {HOW_IT_WORKS}")
                with gr.Row():
                    sketchpad = gr.Sketchpad(label="sketch (dark ink on white)", type="numpy", image_mode="L", canvas_size=(320, 320), elem_id="sketchpad")
                    with gr.Column():
                        upload = gr.File(label="or upload an image (at most 10 MB)", type="filepath", elem_id="sketch-upload")
                        converted = gr.Image(label="64x64 sprite", type="numpy", image_mode="L", format="png", interactive=False, height=256, elem_id="sketch-sprite")
                        message = gr.Markdown("Nothing drawn yet: draw a shape or upload an image.", elem_id="sketch-message")
                with gr.Row():
                    to_encode = gr.Button("Send to Encode")
                    to_a = gr.Button("Use as swap A")
                    to_b = gr.Button("Use as swap B")
                    if scene is not None:
                        with gr.Group():
                            scene_slot = gr.Dropdown([str(i + 1) for i in range(MAX_SCENE_OBJECTS)], value="1", label="scene object", min_width=100)
                            to_scene = gr.Button("Use as scene object")
                sketch_sprite = gr.State(None)
            with gr.Tab("About", id="about"):
                about_tab(models)

        # Live wiring: every control change redraws the outputs that depend on it.
        gr.on(encode_picker.triggers, render_sprite, _picker_inputs(encode_picker), sprite, api_name="render", **LIVE)
        gr.on(encode_picker.triggers, encode, _picker_inputs(encode_picker), [reconstruction, heatmap, readout], api_name="encode", **LIVE)
        swap_inputs = [features] + picker_a.factors + picker_b.factors + [picker_a.source, picker_b.source, picker_a.custom, picker_b.custom]
        gr.on(
            [features.change] + picker_a.triggers + picker_b.triggers,
            swap,
            swap_inputs,
            [shown_a, shown_b, result, truth, summary],
            api_name="swap",
            **LIVE,
        )
        demo.load(render_sprite, _picker_inputs(encode_picker), sprite, api_visibility="private")
        demo.load(encode, _picker_inputs(encode_picker), [reconstruction, heatmap, readout], api_visibility="private")
        demo.load(swap, swap_inputs, [shown_a, shown_b, result, truth, summary], api_visibility="private")

        # Sketch and upload: convert on every stroke or upload, then send the sprite on request.
        sketchpad.change(_from_sketch, sketchpad, [converted, message, sketch_sprite], api_visibility="private", **LIVE)
        upload.upload(_from_upload, upload, [converted, message, sketch_sprite], api_visibility="private")
        for button, picker, tab in ((to_encode, encode_picker, "encode"), (to_a, picker_a, "swap"), (to_b, picker_b, "swap")):
            button.click(partial(_send, tab=tab), sketch_sprite, [picker.custom, picker.source, tabs], api_visibility="private")
        if scene is not None:
            wire_scene(models, scene, demo)
            outputs = [p.custom for p in scene.pickers] + [p.source for p in scene.pickers] + [scene.count, tabs]
            to_scene.click(_send_to_scene, [sketch_sprite, scene_slot, scene.count], outputs, api_visibility="private")
    return demo


SCENE_START = [
    ("square", 0.6, 0.0, 0.1, 0.15),
    ("ellipse", 0.7, 46.15, 0.9, 0.2),
    ("heart", 0.8, 0.0, 0.5, 0.85),
    ("square", 0.5, 27.69, 0.1, 0.9),
    ("ellipse", 0.5, 0.0, 0.9, 0.9),
]
SCENE_INTRO = (
    "Compose a scene of 2 to 5 objects. **Stage 2** decodes the plain sum of every object's feature "
    "vectors; **stage 3** binds each feature to a feature placeholder and each object to an object "
    "placeholder before bundling, so single features can be exchanged between objects and read back "
    "by unbinding. The models were trained on scenes whose objects do not overlap."
)


@dataclass
class SceneControls:
    """The components of the Scene tab."""

    count: gr.Slider
    feature: gr.Dropdown
    first: gr.Dropdown
    second: gr.Dropdown
    random: gr.Button
    pickers: list[SpritePicker]
    columns: list[gr.Column]
    outputs: list


def scene_tab(models: Models) -> SceneControls:
    """Lay out the Scene tab; the events are wired by ``wire_scene``."""
    with gr.Tab("Scene", id="scene"):
        gr.Markdown(SCENE_INTRO)
        with gr.Row():
            count = gr.Slider(2, MAX_SCENE_OBJECTS, value=3, step=1, label="objects", elem_id="scene-count")
            feature = gr.Dropdown(["none", *FACTOR_NAMES], value="none", label="exchange feature (stage 3)", elem_id="scene-feature")
            numbers = [str(i + 1) for i in range(MAX_SCENE_OBJECTS)]
            first = gr.Dropdown(numbers, value="1", label="between object")
            second = gr.Dropdown(numbers, value="2", label="and object")
            random = gr.Button("Random scene")
        pickers, columns = [], []
        with gr.Row():
            for i in range(MAX_SCENE_OBJECTS):
                with gr.Column(visible=i < 3, min_width=180) as column:
                    pickers.append(sprite_picker(f"object {i + 1}", SCENE_START[i]))
                columns.append(column)
        with gr.Row():
            truth = gr.Image(label="rendered scene", type="numpy", image_mode="L", format="png", interactive=False, height=220)
            stage2 = gr.Image(label="stage 2: plain sum", type="numpy", image_mode="L", format="png", interactive=False, height=220, elem_id="scene-stage2")
            stage3 = gr.Image(label="stage 3: bound bundle", type="numpy", image_mode="L", format="png", interactive=False, height=220, elem_id="scene-stage3")
            swapped = gr.Image(label="stage 3 with the feature exchanged", type="numpy", image_mode="L", format="png", interactive=False, height=220)
            swapped_truth = gr.Image(label="rendered exchange", type="numpy", image_mode="L", format="png", interactive=False, height=220)
        summary = gr.Markdown(elem_id="scene-summary")
        readout = gr.Dataframe(
            headers=["object", *FACTOR_NAMES],
            type="array",
            label="unbinding each object and feature from the stage-3 scene vector",
            interactive=False,
        )
    return SceneControls(count, feature, first, second, random, pickers, columns, [truth, stage2, stage3, swapped, swapped_truth, readout, summary])


def wire_scene(models: Models, controls: SceneControls, demo: gr.Blocks) -> None:
    """Connect the Scene tab: live updates, the object count, random scenes and ``/scene``."""

    def scene(count=3, feature="none", first="1", second="2", *values):
        """Decode a scene of ``count`` objects; values are 5 x (shape, scale, degrees, posX, posY), 5 sources, 5 images."""
        if count is None or float(count) != int(count):
            raise gr.Error(f"invalid object count {count}: expected a whole number from 2 to {MAX_SCENE_OBJECTS}", print_exception=False)
        count = int(count)
        factors, sources, customs = values[:25], values[25:30], values[30:35]
        choices = [
            _choice(sources[i] if i < len(sources) else "factors", *factors[5 * i:5 * i + 5], customs[i] if i < len(customs) else None)
            for i in range(count)
        ]
        swap = None if feature in (None, "none") else (int(first) - 1, int(second) - 1)
        try:
            return handlers.scene_handler(models, choices, None if swap is None else feature, swap)
        except ValueError as error:
            raise gr.Error(str(error), print_exception=False) from None

    pickers = controls.pickers
    inputs = [controls.count, controls.feature, controls.first, controls.second]
    inputs += [c for p in pickers for c in p.factors] + [p.source for p in pickers] + [p.custom for p in pickers]
    triggers = [controls.count.change, controls.feature.change, controls.first.change, controls.second.change]
    triggers += [t for p in pickers for t in p.triggers]
    gr.on(triggers, scene, inputs, controls.outputs, api_name="scene", **LIVE)
    demo.load(scene, inputs, controls.outputs, api_visibility="private")

    def show(count):
        return [gr.Column(visible=i < int(count)) for i in range(MAX_SCENE_OBJECTS)]

    controls.count.change(show, controls.count, controls.columns, queue=False, api_visibility="private")

    def randomise(count):
        values = handlers.random_scene(int(count))
        updates = []
        for i in range(MAX_SCENE_OBJECTS):
            updates += list(values[i]) if i < len(values) else [gr.update()] * 5
        return updates + ["factors"] * MAX_SCENE_OBJECTS

    outputs = [c for p in pickers for c in p.factors] + [p.source for p in pickers]
    controls.random.click(randomise, controls.count, outputs, api_visibility="private")


def _send_to_scene(sprite, slot, count):
    if sprite is None:
        raise gr.Error("Nothing to send: draw a shape or upload an image first.", print_exception=False)
    index = int(slot) - 1
    customs = [gr.update()] * MAX_SCENE_OBJECTS
    sources = [gr.update()] * MAX_SCENE_OBJECTS
    customs[index], sources[index] = sprite, "image"
    return customs + sources + [max(int(count), index + 1), gr.Tabs(selected="scene")]


def _picker_inputs(picker: SpritePicker) -> list:
    return picker.factors + [picker.source, picker.custom]


def _from_sketch(value):
    try:
        sprite = sprite_from_sketch(value)
    except SpriteInputError as error:
        return None, str(error), None
    return handlers.display(sprite), f"Sprite ready: {int(sprite.sum())} foreground pixels.", sprite


def _from_upload(path):
    if path is None:
        return None, "No file chosen.", None
    try:
        sprite = sprite_from_file(path)
    except SpriteInputError as error:
        logger.info("rejected upload %s: %s", Path(path).name, error)
        return None, f"**Cannot use this file:** {error}", None
    return handlers.display(sprite), f"Sprite ready: {int(sprite.sum())} foreground pixels.", sprite


def _send(sprite, tab):
    if sprite is None:
        raise gr.Error("Nothing to send: draw a shape or upload an image first.", print_exception=False)
    return sprite, "image", gr.Tabs(selected=tab)


def about_tab(models: Models) -> None:
    """Show each stage's model card and figures."""
    gr.Markdown(
        "Models are loaded once at start-up. Their model cards, with the metrics measured by "
        "`python -m vsa_train evaluate`, follow."
    )
    for stage, card in models.cards.items():
        folder = models.folders[stage]
        with gr.Accordion(f"{stage} model card", open=stage == "stage1"):
            gr.Markdown(_strip_images(card) or f"No model card in {folder.name}.")
            figures = sorted(folder.glob("*.png"))
            if figures:
                gr.Gallery(
                    [(Image.open(path).convert("RGB"), path.stem.replace("_", " ")) for path in figures],
                    label=f"{stage} figures",
                    columns=min(3, len(figures)),
                    height="auto",
                )


def _strip_images(markdown: str) -> str:
    return re.sub(r"!\[[^\]]*\]\([^)]*\)\n?", "", markdown)

