// Which BLAS LibTorch's CPU kernels will call. Debian's libtorch-dev links the system
// libblas.so.3, and with only the netlib reference implementation behind it (the package's own
// dependency) batch-1 inference runs 5-6x slower than with OpenBLAS (bench/RESULTS.md).
#pragma once

#include <string>

namespace ssd {

// Empty, or a warning naming the slow library and what to install, when the sgemm_ LibTorch's
// CPU library binds to (looked up through that library's own dependencies) comes from the
// reference BLAS (Debian's alternatives place it in a `blas/` folder).
std::string slow_blas_warning();

}  // namespace ssd
