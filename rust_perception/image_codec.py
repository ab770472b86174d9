"""sensor_msgs/Image and CompressedImage ↔ NumPy, without cv_bridge and without importing ROS.

Works on any object with the message's fields (rclpy's classes, `rosbags`' typestore classes),
so it is tested here against both. Row padding (`step` > width × pixel size) and `is_bigendian`
are honoured. `to_rgb8` gives what the model eats: (H, W, 3) uint8 RGB.
"""

from __future__ import annotations

import numpy as np

# encoding → (channels, numpy dtype); channel order is handled by `to_rgb8`
ENCODINGS = {
    "rgb8": (3, np.uint8), "bgr8": (3, np.uint8), "rgba8": (4, np.uint8), "bgra8": (4, np.uint8),
    "mono8": (1, np.uint8), "8UC1": (1, np.uint8), "mono16": (1, np.uint16), "16UC1": (1, np.uint16),
    "8UC3": (3, np.uint8),
}


class ImageEncodingError(ValueError):
    """An image message this module cannot or will not decode; the message says why."""


def image_to_numpy(msg) -> np.ndarray:
    """(H, W) or (H, W, C) array of an Image message, in its own encoding and channel order."""
    if msg.encoding not in ENCODINGS:
        raise ImageEncodingError(f"image encoding {msg.encoding!r} is not supported "
                                 f"(supported: {', '.join(ENCODINGS)})")
    channels, dtype = ENCODINGS[msg.encoding]
    dtype = np.dtype(dtype).newbyteorder(">" if msg.is_bigendian else "<")
    row = msg.width * channels * dtype.itemsize
    if msg.step < row:
        raise ImageEncodingError(f"image step {msg.step} is smaller than width × pixel size = {row}")
    data = np.frombuffer(bytes(msg.data) if not isinstance(msg.data, np.ndarray) else msg.data.tobytes(), np.uint8)
    if data.size < msg.step * msg.height:
        raise ImageEncodingError(f"image data has {data.size} bytes; height × step needs {msg.step * msg.height}")
    rows = data[: msg.step * msg.height].reshape(msg.height, msg.step)[:, :row]
    pixels = np.ascontiguousarray(rows).view(dtype).astype(dtype.newbyteorder("="))
    return pixels.reshape(msg.height, msg.width) if channels == 1 else pixels.reshape(msg.height, msg.width, channels)


def to_rgb8(array: np.ndarray, encoding: str) -> np.ndarray:
    """Any supported encoding's array → (H, W, 3) uint8 RGB (mono16 keeps its top 8 bits)."""
    if encoding in ("mono16", "16UC1"):
        array = (array >> 8).astype(np.uint8)
    if array.ndim == 2:
        return np.repeat(array[..., None], 3, axis=2)
    if encoding in ("bgr8", "bgra8", "8UC3"):  # 8UC3 is OpenCV's default order: BGR
        array = array[..., 2::-1]
    return np.ascontiguousarray(array[..., :3])


def image_msg_to_rgb8(msg) -> np.ndarray:
    return to_rgb8(image_to_numpy(msg), msg.encoding)


def fill_image_msg(msg, array: np.ndarray, encoding: str):
    """Fill an Image message (any class with the fields) from an array; returns the message."""
    if encoding not in ENCODINGS:
        raise ImageEncodingError(f"image encoding {encoding!r} is not supported (supported: {', '.join(ENCODINGS)})")
    channels, dtype = ENCODINGS[encoding]
    array = np.ascontiguousarray(array, dtype=dtype)
    expected = 2 if channels == 1 else 3
    if array.ndim != expected or (channels > 1 and array.shape[2] != channels):
        raise ImageEncodingError(f"array of shape {array.shape} does not fit encoding {encoding} ({channels} channels)")
    msg.height, msg.width = array.shape[:2]
    msg.encoding = encoding
    msg.is_bigendian = 0
    msg.step = array.shape[1] * channels * array.itemsize
    data = array.tobytes()
    try:
        msg.data = data
    except (TypeError, AttributeError):  # rosbags' dataclasses hold a NumPy array
        msg.data = np.frombuffer(data, np.uint8)
    return msg


def compressed_to_rgb8(msg) -> np.ndarray:
    """CompressedImage (jpeg / png, any format string naming them) → (H, W, 3) uint8 RGB."""
    import cv2

    fmt = msg.format.lower()
    if "jpeg" not in fmt and "jpg" not in fmt and "png" not in fmt:
        raise ImageEncodingError(f"compressed image format {msg.format!r} is not supported (jpeg, png)")
    raw = np.frombuffer(bytes(msg.data) if not isinstance(msg.data, np.ndarray) else msg.data.tobytes(), np.uint8)
    image = cv2.imdecode(raw, cv2.IMREAD_COLOR)
    if image is None:
        raise ImageEncodingError(f"compressed image ({msg.format}) could not be decoded")
    return np.ascontiguousarray(image[..., ::-1])


def fill_compressed_msg(msg, rgb: np.ndarray, fmt: str = "jpeg", quality: int = 95):
    import cv2

    ext = {"jpeg": ".jpg", "png": ".png"}[fmt]
    params = [cv2.IMWRITE_JPEG_QUALITY, quality] if fmt == "jpeg" else []
    ok, buf = cv2.imencode(ext, np.ascontiguousarray(rgb[..., ::-1]), params)
    if not ok:
        raise ImageEncodingError(f"could not encode a {rgb.shape} image as {fmt}")
    msg.format = f"rgb8; {fmt} compressed bgr8"
    try:
        msg.data = buf.tobytes()
    except (TypeError, AttributeError):
        msg.data = buf.ravel()
    return msg


def resize_rgb(rgb: np.ndarray, size: int) -> np.ndarray:
    """Centre-crop to square and resize to size×size (area filter) — what the model expects."""
    from PIL import Image

    h, w = rgb.shape[:2]
    s = min(h, w)
    top, left = (h - s) // 2, (w - s) // 2
    square = rgb[top : top + s, left : left + s]
    if s == size:
        return np.ascontiguousarray(square)
    return np.asarray(Image.fromarray(square).resize((size, size), Image.BOX))


def model_input(msg, compressed: bool, size: int) -> np.ndarray:
    """An Image or CompressedImage message → the model's (size, size, 3) uint8 RGB; ValueError
    (or the decoder's error) for a frame that cannot be used. One path for the node and rust_offline."""
    rgb = compressed_to_rgb8(msg) if compressed else image_msg_to_rgb8(msg)
    if rgb.shape[0] == 0 or rgb.shape[1] == 0:
        raise ValueError("image is empty (0 pixels)")
    return resize_rgb(rgb, size)
