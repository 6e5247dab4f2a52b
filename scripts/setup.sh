#!/usr/bin/env bash
# Installs everything this project needs on a fresh Debian 12 machine:
#   sudo bash scripts/setup.sh        (or as root)
# Product dependencies come from Debian packages only. The test references (pycocotools as
# the mAP reference, py-motmetrics as the tracking measures' reference, safetensors to open our
# weights files from Python) come from PyPI into
# .venv, a virtual environment over Debian's /usr/bin/python3 that also sees Debian's
# python3-torch / python3-torchvision (the ResNet and NMS references), python3-gi, numpy and
# motmetrics' pandas, scipy and xmltodict (--no-deps keeps Debian's numpy 1.24, which Debian's
# torch was built against).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"

pkgs=(
  build-essential pkg-config meson ninja-build cmake git
  libtorch-dev
  # An optimised BLAS behind Debian's LibTorch. With only the reference libblas3 that
  # libtorch-dev pulls in, batch-1 convolutions on small maps (LibTorch's im2col + GEMM path)
  # run 5-6x slower: the default model's forward takes 20.7 ms instead of 3.6 (bench/RESULTS.md).
  # The OpenMP build follows LibTorch's thread count; it takes over libblas.so.3 through
  # update-alternatives (priority above the reference BLAS).
  libopenblas0-openmp
  libgstreamer1.0-dev libgstreamer-plugins-base1.0-dev libgstreamer-plugins-bad1.0-dev
  gstreamer1.0-tools gstreamer1.0-plugins-base gstreamer1.0-plugins-good
  gstreamer1.0-plugins-bad gstreamer1.0-plugins-ugly gstreamer1.0-libav
  libgstrtspserver-1.0-dev gir1.2-gst-rtsp-server-1.0
  libopencv-dev
  # ssdoverlay's captions: Pango (any script, with fontconfig's fallback fonts) and one font.
  libpango1.0-dev fonts-dejavu-core
  libgtest-dev libgmock-dev nlohmann-json3-dev libcli11-dev libpugixml-dev
  python3 python3-venv python3-gi python3-gst-1.0 gir1.2-gstreamer-1.0 gir1.2-gst-plugins-base-1.0
  python3-numpy python3-torch python3-torchvision
  python3-pandas python3-scipy python3-xmltodict
)
# ONNX on Debian 13: scripts/export-onnx.py with LibTorch 2.x's exporter (Debian 13's
# python3-torch) needs the onnx package, and onnxruntime checks the export (`bench` suite);
# Debian 12 has neither package (its torch 1.13 exports without onnx; onnxruntime from PyPI below).
. /etc/os-release
[ "${VERSION_ID%%.*}" -ge 13 ] 2>/dev/null && pkgs+=(python3-onnx python3-onnxruntime)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${#missing[@]} Debian packages: ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# Test references from PyPI, in a venv that also sees Debian's Python packages.
venv="$root/.venv"
if [ ! -x "$venv/bin/python" ]; then
  /usr/bin/python3 -m venv --system-site-packages "$venv"
fi
# pycocotools 2.0.8 uses numpy APIs that numpy 2 removed (np.NPY_OWNDATA): with a numpy 2
# (Debian 13's 2.2, scripts/check-trixie.sh) the mAP reference needs 2.0.10.
coco=2.0.8
"$venv/bin/python" -c 'import sys, numpy; sys.exit(int(numpy.__version__.split(".")[0]) < 2)' && coco=2.0.10
"$venv/bin/python" -c "import sys, importlib.metadata as m, safetensors
sys.exit(m.version('pycocotools') != '$coco')" 2>/dev/null || \
  "$venv/bin/python" -m pip install -q --disable-pip-version-check --no-deps "pycocotools==$coco" "safetensors==0.4.5"
# py-motmetrics (bench/tracker_motmetrics.py, the `bench` suite's tracker-motmetrics test).
"$venv/bin/python" -c "import sys, importlib.metadata as m
sys.exit(m.version('motmetrics') != '1.4.0')" 2>/dev/null || \
  "$venv/bin/python" -m pip install -q --disable-pip-version-check --no-deps "motmetrics==1.4.0"
# onnxruntime from PyPI where Debian has none (Debian 12); its other dependencies serve only its
# tools.
"$venv/bin/python" -c 'import onnxruntime' 2>/dev/null || \
  "$venv/bin/python" -m pip install -q --disable-pip-version-check --no-deps "onnxruntime==1.19.2"
echo "setup: done"
