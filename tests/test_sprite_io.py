import numpy as np
import pytest
from PIL import Image, ImageDraw

from vsa_demo.sprite_io import MAX_UPLOAD_BYTES, SpriteInputError, sprite_from_file, sprite_from_sketch, to_sprite

from .upload_corpus import drawing, write_corpus


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return write_corpus(tmp_path_factory.mktemp("uploads"))


def test_every_readable_kind_gives_a_sprite(corpus):
    for name, path in corpus.items():
        if name.endswith(".bad"):
            continue
        sprite = sprite_from_file(path)
        assert sprite.shape == (64, 64), name
        assert sprite.dtype == np.uint8, name
        assert set(np.unique(sprite)) == {0, 1}, name


def test_every_unusable_kind_gives_a_message(corpus):
    for name, path in corpus.items():
        if not name.endswith(".bad"):
            continue
        with pytest.raises(SpriteInputError) as error:
            sprite_from_file(path)
        assert len(str(error.value)) > 20, name


@pytest.mark.parametrize(
    "name, message",
    [
        ("truncated.png.bad", "truncated or corrupt"),
        ("not_an_image.png.bad", "not an image"),
        ("empty.png.bad", "is empty"),
        ("bomb.png.bad", "too large"),
        ("blank.png.bad", "no foreground"),
    ],
)
def test_messages_say_what_is_wrong(corpus, name, message):
    with pytest.raises(SpriteInputError, match=message):
        sprite_from_file(corpus[name])


def test_ink_polarity_follows_border(corpus):
    dark_on_light = sprite_from_file(corpus["mode_RGB.png"])
    light_on_dark = sprite_from_file(corpus["light_on_dark.png"])
    assert np.array_equal(dark_on_light, light_on_dark)
    assert dark_on_light[32, 32] == 1
    assert dark_on_light[0, 0] == 0


def test_transparent_pixels_are_background(corpus):
    sprite = sprite_from_file(corpus["transparent.png"])
    assert sprite[28, 28] == 1
    assert sprite[5, 5] == 0
    assert sprite[60, 60] == 0


def test_exif_orientation_applied(corpus):
    sprite = sprite_from_file(corpus["exif_rotated.jpg"])
    rows, cols = np.nonzero(sprite)
    assert cols.mean() > 40, "the mark should be on the right after EXIF rotation"
    assert 20 < rows.mean() < 44


def test_aspect_ratio_kept():
    wide = Image.new("L", (200, 100), 255)
    ImageDraw.Draw(wide).ellipse((70, 20, 130, 80), fill=0)  # a circle in a wide image stays round
    sprite = to_sprite(wide)
    rows, cols = np.nonzero(sprite)
    assert abs((rows.max() - rows.min()) - (cols.max() - cols.min())) <= 2


def test_oversized_file_rejected(tmp_path):
    path = tmp_path / "big.png"
    path.write_bytes(b"\x89PNG" + b"\x00" * (MAX_UPLOAD_BYTES + 1))
    with pytest.raises(SpriteInputError, match="the limit is 10 MB"):
        sprite_from_file(path)


def test_empty_sketch_asks_to_draw():
    with pytest.raises(SpriteInputError, match="draw a shape first"):
        sprite_from_sketch({"background": None, "layers": [], "composite": None})
    blank = np.full((320, 320), 255, dtype=np.uint8)
    with pytest.raises(SpriteInputError, match="draw a shape first"):
        sprite_from_sketch({"background": blank, "layers": [], "composite": blank})


def test_sketch_strokes_become_sprite():
    composite = np.full((320, 320), 255, dtype=np.uint8)
    composite[100:220, 140:180] = 0  # a dark bar drawn on white
    sprite = sprite_from_sketch({"composite": composite})
    assert sprite[40, 32] == 1
    assert sprite[10, 10] == 0
    assert sprite.sum() == (120 // 5) * (40 // 5)  # 320 pixels shrink 5 times to 64


def test_upload_handler_never_raises(corpus):
    from vsa_demo.ui import _from_upload

    for name, path in corpus.items():
        picture, message, sprite = _from_upload(str(path))
        if name.endswith(".bad"):
            assert picture is None, name
            assert sprite is None, name
            assert message.startswith("**Cannot use this file:**"), name
        else:
            assert picture.shape == (256, 256), name
            assert message.startswith("Sprite ready"), name
