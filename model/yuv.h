// YUV -> RGB: the conversion ssddetect applies to NV12 and I420 frames (after resizing their
// planes, model/detector.cpp), a pure function so that it is checked against the standards'
// own values.
#pragma once

#include <torch/types.h>

#include "detector.h"   // YuvMatrix

namespace ssd {

// y: (..., 1, H, W) luma, cbcr: (..., 2, H, W) Cb then Cr, floats in code values (0-255) ->
// (..., 3, H, W) R, G, B in [0, 1] (clamped), by the matrix's Kr and Kb: Y' = Y/255, C = (C -
// 128)/255 at full range; Y' = (Y - 16)/219, C = (C - 128)/224 at limited range (8-bit video:
// Y 16-235, C 16-240).
torch::Tensor yuv_to_rgb(const torch::Tensor& y, const torch::Tensor& cbcr, const YuvMatrix& m);

}  // namespace ssd
