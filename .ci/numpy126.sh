#!/usr/bin/env bash
# CI's second pass: the core, runtime and offline tests again under numpy 1.26 and OpenCV 4.11, the
# numpy-sensitive versions of a ROS 2 Jazzy machine (constraints/jazzy.txt), in a throwaway venv
# that sees everything else the first pass installed (--system-site-packages). Run it after .ci/run's
# install (or any `pip install -e '.[test]' -c constraints/ci.txt`): bash .ci/numpy126.sh
set -euo pipefail
cd "$(dirname "$0")/.."
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
python -m venv --system-site-packages "$tmp/venv"
python=$tmp/venv/bin/python
# pip's log is shown only on failure: its note that packages outside the venv want numpy 2 is expected
if ! "$python" -m pip install -q numpy opencv-python-headless ml-dtypes -c constraints/jazzy.txt >"$tmp/pip.log" 2>&1; then
  cat "$tmp/pip.log"
  exit 1
fi
"$python" -c 'import numpy, cv2; assert numpy.__version__.startswith("1.26."), numpy.__version__
print(f"second pass: numpy {numpy.__version__}, OpenCV {cv2.__version__}")'
"$python" -m pytest -q -p no:cacheprovider tests/test_config.py tests/test_image_codec.py tests/test_store.py \
  tests/test_scene_memory.py tests/test_runtime.py tests/test_tensorrt.py tests/test_offline.py \
  tests/test_rosbag_ingest.py tests/test_bad_inputs.py \
  --deselect tests/test_store.py::test_killed_generation_resumes_to_identical_dataset
