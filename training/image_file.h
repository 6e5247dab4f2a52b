// Writing an image file whose failure names its reason.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include <opencv2/core.hpp>

namespace ssdtrain {

// `image` encoded by OpenCV as `ext` (".png", ".jpg") with cv::imwrite's `params`, then written
// by write_file_atomic: a failed write names its reason (a full disk, a read-only folder), which
// the codecs' own writers did not (libpng's "Write Error", or cv::imwrite's bare false). Throws
// ssd::Error naming the file.
void write_image_file(const std::filesystem::path& path, const cv::Mat& image, const std::string& ext,
                      const std::vector<int>& params = {});

}  // namespace ssdtrain
