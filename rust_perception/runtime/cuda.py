"""The few CUDA runtime calls the TensorRT backend needs (device buffers, pinned host buffers,
a stream, device properties), through ctypes on libcudart: no torch and no extra package, so the
TensorRT path runs on a torch-free Jetson. Loading happens on first use; importing needs nothing."""

from __future__ import annotations

import ctypes
import glob
import importlib.util
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from ..errors import UserError

# cudaDeviceAttr and cudaMemcpyKind values (CUDA runtime API)
ATTR_SM_COUNT, ATTR_CC_MAJOR, ATTR_CC_MINOR = 16, 75, 76
HOST_TO_DEVICE, DEVICE_TO_HOST = 1, 2
PROPERTIES_BYTES = 8192  # > sizeof(cudaDeviceProp); its first field is char name[256]


@dataclass(frozen=True)
class DeviceInfo:
    """What a TensorRT plan depends on besides TensorRT itself."""

    name: str
    compute_capability: str
    sm_count: int
    cuda_runtime: int
    cuda_driver: int

    def as_dict(self) -> dict:
        return asdict(self)


def _library_candidates() -> list[str]:
    names = ["libcudart.so", "libcudart.so.12"]
    spec = importlib.util.find_spec("nvidia")  # the nvidia-cuda-runtime-cu12 wheel TensorRT's pip libs bring
    for root in (spec.submodule_search_locations or []) if spec else []:
        names += sorted(glob.glob(os.path.join(root, "cuda_runtime", "lib", "libcudart.so*")))
    cuda_home = os.environ.get("CUDA_HOME", "/usr/local/cuda")
    names += sorted(glob.glob(str(Path(cuda_home) / "lib64" / "libcudart.so*")))
    return names


class CudaRuntime:
    """libcudart through ctypes; every call's error code becomes a RuntimeError naming it."""

    def __init__(self, lib):
        self.lib = lib

    @classmethod
    def load(cls) -> CudaRuntime:
        for name in _library_candidates():
            try:
                lib = ctypes.CDLL(name)
            except OSError:
                continue
            lib.cudaGetErrorString.restype = ctypes.c_char_p
            return cls(lib)
        raise UserError("backend 'tensorrt' needs the CUDA runtime (libcudart.so.12): install JetPack 6 on a "
                        "Jetson, or the CUDA 12 runtime / `pip install nvidia-cuda-runtime-cu12` on a PC")

    def _check(self, code: int, what: str) -> None:
        if code != 0:
            message = self.lib.cudaGetErrorString(code)
            raise RuntimeError(f"CUDA {what} failed: error {code} "
                               f"({message.decode() if isinstance(message, bytes) else message})")

    def _int(self, fn: str, *args) -> int:
        value = ctypes.c_int()
        self._check(getattr(self.lib, fn)(ctypes.byref(value), *args), fn)
        return value.value

    def device_count(self) -> int:
        """Visible CUDA devices; 0 when the driver has none (cudaErrorNoDevice or no driver)."""
        count = ctypes.c_int()
        return count.value if self.lib.cudaGetDeviceCount(ctypes.byref(count)) == 0 else 0

    def device_info(self) -> DeviceInfo:
        device = self._int("cudaGetDevice")
        props = ctypes.create_string_buffer(PROPERTIES_BYTES)
        get = getattr(self.lib, "cudaGetDeviceProperties_v2", None) or self.lib.cudaGetDeviceProperties
        self._check(get(props, device), "cudaGetDeviceProperties")
        major = self._int("cudaDeviceGetAttribute", ATTR_CC_MAJOR, device)
        minor = self._int("cudaDeviceGetAttribute", ATTR_CC_MINOR, device)
        return DeviceInfo(name=props.raw[:256].split(b"\0", 1)[0].decode(errors="replace"),
                          compute_capability=f"{major}.{minor}",
                          sm_count=self._int("cudaDeviceGetAttribute", ATTR_SM_COUNT, device),
                          cuda_runtime=self._int("cudaRuntimeGetVersion"), cuda_driver=self._int("cudaDriverGetVersion"))

    def malloc(self, nbytes: int) -> int:
        ptr = ctypes.c_void_p()
        self._check(self.lib.cudaMalloc(ctypes.byref(ptr), ctypes.c_size_t(max(nbytes, 1))), f"cudaMalloc({nbytes})")
        return ptr.value

    def free(self, ptr: int) -> None:
        self._check(self.lib.cudaFree(ctypes.c_void_p(ptr)), "cudaFree")

    def host_array(self, shape: tuple[int, ...], dtype) -> np.ndarray:
        """A pinned (page-locked) host array: asynchronous copies need one."""
        nbytes = max(int(np.prod(shape)) * np.dtype(dtype).itemsize, 1)
        ptr = ctypes.c_void_p()
        self._check(self.lib.cudaMallocHost(ctypes.byref(ptr), ctypes.c_size_t(nbytes)), f"cudaMallocHost({nbytes})")
        buffer = (ctypes.c_byte * nbytes).from_address(ptr.value)
        return np.frombuffer(buffer, dtype=dtype, count=int(np.prod(shape))).reshape(shape)

    def free_host(self, array: np.ndarray) -> None:
        self._check(self.lib.cudaFreeHost(ctypes.c_void_p(array.ctypes.data)), "cudaFreeHost")

    def stream(self) -> int:
        handle = ctypes.c_void_p()
        self._check(self.lib.cudaStreamCreate(ctypes.byref(handle)), "cudaStreamCreate")
        return handle.value or 0

    def copy_async(self, dst: int, src: int, nbytes: int, kind: int, stream: int) -> None:
        self._check(self.lib.cudaMemcpyAsync(ctypes.c_void_p(dst), ctypes.c_void_p(src), ctypes.c_size_t(nbytes),
                                             kind, ctypes.c_void_p(stream)), "cudaMemcpyAsync")

    def synchronize(self, stream: int) -> None:
        self._check(self.lib.cudaStreamSynchronize(ctypes.c_void_p(stream)), "cudaStreamSynchronize")
