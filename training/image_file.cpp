#include "image_file.h"

#include <opencv2/imgcodecs.hpp>

#include "../model/error.h"
#include "atomic_file.h"

namespace ssdtrain {

void write_image_file(const std::filesystem::path& path, const cv::Mat& image, const std::string& ext,
                      const std::vector<int>& params) {
  std::vector<uchar> bytes;
  bool ok = false;
  try {
    ok = cv::imencode(ext, image, bytes, params);
  } catch (const cv::Exception& e) {
    throw ssd::Error("cannot write " + path.string() + ": " + e.what());
  }
  if (!ok) throw ssd::Error("cannot write " + path.string() + ": the picture cannot be encoded as " + ext);
  write_file_atomic(path, std::string(bytes.begin(), bytes.end()));
}

}  // namespace ssdtrain
