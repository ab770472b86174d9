"""Image messages ↔ NumPy against real message classes: rosbags' typestore (always installed)
and rclpy's sensor_msgs (when the ROS 2 wheels are present)."""

import importlib.util

import numpy as np
import pytest
from rosbags.typesys import Stores, get_typestore

from rust_perception.image_codec import (ImageEncodingError, compressed_to_rgb8, fill_compressed_msg, fill_image_msg,
                                         image_msg_to_rgb8, image_to_numpy, resize_rgb)

TYPES = get_typestore(Stores.ROS2_JAZZY).types
RNG = np.random.default_rng(0)
RGB = RNG.integers(0, 256, (5, 7, 3), dtype=np.uint8)


def rosbags_image(array: np.ndarray, encoding: str, pad: int = 0, bigendian: bool = False):
    """A rosbags sensor_msgs/Image with `pad` bytes of row padding, built by hand (not by us)."""
    h, w = array.shape[:2]
    raw = array.astype(array.dtype.newbyteorder(">" if bigendian else "<")).tobytes()
    row = len(raw) // h
    padded = b"".join(raw[i * row : (i + 1) * row] + b"\xee" * pad for i in range(h))
    header = TYPES["std_msgs/msg/Header"](stamp=TYPES["builtin_interfaces/msg/Time"](sec=1, nanosec=2), frame_id="cam")
    return TYPES["sensor_msgs/msg/Image"](header=header, height=h, width=w, encoding=encoding, is_bigendian=int(bigendian),
                                          step=row + pad, data=np.frombuffer(padded, np.uint8))


@pytest.mark.parametrize("encoding, make", [
    ("rgb8", lambda: RGB), ("bgr8", lambda: RGB[..., ::-1]),
    ("rgba8", lambda: np.concatenate([RGB, np.full((5, 7, 1), 9, np.uint8)], 2)),
    ("bgra8", lambda: np.concatenate([RGB[..., ::-1], np.full((5, 7, 1), 9, np.uint8)], 2)),
])
def test_colour_encodings_with_row_padding_decode_to_rgb(encoding, make):
    for pad in (0, 3):
        assert np.array_equal(image_msg_to_rgb8(rosbags_image(np.ascontiguousarray(make()), encoding, pad)), RGB)


def test_mono_and_16_bit_with_either_byte_order():
    mono = RGB[..., 0]
    assert np.array_equal(image_msg_to_rgb8(rosbags_image(mono, "mono8", pad=1)), np.repeat(mono[..., None], 3, 2))
    deep = RNG.integers(0, 65536, (5, 7), dtype=np.uint16)
    for encoding in ("mono16", "16UC1"):
        for bigendian in (False, True):
            msg = rosbags_image(deep, encoding, pad=2, bigendian=bigendian)
            assert np.array_equal(image_to_numpy(msg), deep)
            assert np.array_equal(image_msg_to_rgb8(msg)[..., 1], (deep >> 8).astype(np.uint8))


def test_bad_messages_say_what_is_wrong():
    with pytest.raises(ImageEncodingError, match="'yuv422' is not supported"):
        image_to_numpy(rosbags_image(RGB, "yuv422"))
    short = rosbags_image(RGB, "rgb8")
    short.step = 3
    with pytest.raises(ImageEncodingError, match="step 3 is smaller than width × pixel size = 21"):
        image_to_numpy(short)
    truncated = rosbags_image(RGB, "rgb8")
    truncated.data = truncated.data[:50]
    with pytest.raises(ImageEncodingError, match="has 50 bytes; height × step needs 105"):
        image_to_numpy(truncated)


def test_round_trip_through_our_encoder_and_compressed_images():
    msg = fill_image_msg(rosbags_image(RGB, "rgb8"), RGB[..., ::-1], "bgr8")
    assert msg.step == 21 and np.array_equal(image_msg_to_rgb8(msg), RGB)
    smooth = np.repeat(np.repeat(RGB, 8, 0), 8, 1)
    compressed = TYPES["sensor_msgs/msg/CompressedImage"](header=msg.header, format="", data=np.zeros(0, np.uint8))
    fill_compressed_msg(compressed, smooth, "png")
    assert np.array_equal(compressed_to_rgb8(compressed), smooth)
    fill_compressed_msg(compressed, smooth, "jpeg")
    assert np.abs(compressed_to_rgb8(compressed).astype(int) - smooth).mean() < 12  # lossy, chroma subsampled
    compressed.format = "tiff"
    with pytest.raises(ImageEncodingError, match="'tiff' is not supported"):
        compressed_to_rgb8(compressed)


def test_resize_centre_crops_then_scales():
    wide = np.zeros((4, 8, 3), np.uint8)
    wide[:, 2:6] = 200  # the centre square
    assert np.array_equal(resize_rgb(wide, 4), np.full((4, 4, 3), 200, np.uint8))
    assert resize_rgb(np.zeros((480, 640, 3), np.uint8), 64).shape == (64, 64, 3)


@pytest.mark.skipif(importlib.util.find_spec("sensor_msgs") is None,
                    reason="ROS 2 message wheels are not installed (pip install ros-jazzy-sensor-msgs)")
def test_rclpy_message_classes():
    from sensor_msgs.msg import CompressedImage, Image

    for encoding, array in (("rgb8", RGB), ("bgr8", RGB[..., ::-1]), ("mono16", RNG.integers(0, 65536, (5, 7), dtype=np.uint16))):
        msg = fill_image_msg(Image(), array, encoding)
        assert np.array_equal(image_to_numpy(msg), array)
    assert np.array_equal(image_msg_to_rgb8(fill_image_msg(Image(), RGB[..., ::-1], "bgr8")), RGB)
    padded = Image(height=5, width=7, encoding="rgb8", step=24,
                   data=b"".join(RGB[i].tobytes() + b"\x00\x00\x00" for i in range(5)))
    assert np.array_equal(image_msg_to_rgb8(padded), RGB)
    smooth = np.repeat(np.repeat(RGB, 8, 0), 8, 1)
    assert np.array_equal(compressed_to_rgb8(fill_compressed_msg(CompressedImage(), smooth, "png")), smooth)
