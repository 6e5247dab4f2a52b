#include "yuv.h"

namespace ssd {

torch::Tensor yuv_to_rgb(const torch::Tensor& y, const torch::Tensor& cbcr, const YuvMatrix& m) {
  TORCH_CHECK(y.dim() >= 3 && y.size(-3) == 1 && cbcr.dim() == y.dim() && cbcr.size(-3) == 2 &&
                  cbcr.size(-2) == y.size(-2) && cbcr.size(-1) == y.size(-1),
              "yuv_to_rgb: luma (..., 1, H, W) and chroma (..., 2, H, W) of one size, not ", y.sizes(), " and ",
              cbcr.sizes());
  const double kr = m.kr, kb = m.kb, kg = 1.0 - kr - kb;
  const double luma_scale = m.full_range ? 255.0 : 219.0, chroma_scale = m.full_range ? 255.0 : 224.0;
  const double black = m.full_range ? 0.0 : 16.0;
  const auto Y = (y - black) / luma_scale;
  const auto Cb = (cbcr.narrow(-3, 0, 1) - 128.0) / chroma_scale;
  const auto Cr = (cbcr.narrow(-3, 1, 1) - 128.0) / chroma_scale;
  auto r = Y + 2.0 * (1.0 - kr) * Cr;
  auto b = Y + 2.0 * (1.0 - kb) * Cb;
  auto g = Y - (2.0 * kr * (1.0 - kr) * Cr + 2.0 * kb * (1.0 - kb) * Cb) / kg;
  return torch::cat({r, g, b}, -3).clamp_(0.0, 1.0);
}

}  // namespace ssd
