// Which BLAS LibTorch's CPU kernels will call, and which kernels of it. Debian's libtorch-dev
// links the system libblas.so.3, and with only the netlib reference implementation behind it
// (the package's own dependency) batch-1 inference runs 5-6x slower than with OpenBLAS
// (bench/RESULTS.md). OpenBLAS in turn picks its kernels by the CPU's model number when it is
// loaded, and Debian 12's 0.3.21 does not know CPUs newer than itself (a 5th-generation Xeon,
// family 6 model 207, say): those get its generic "Prescott" (SSE3) kernels, 3x slower there
// than the AVX-512 ones the CPU runs.
#pragma once

#include <string>

namespace ssd {

// Empty, or a warning naming the slow library and what to install, when the sgemm_ LibTorch's
// CPU library binds to (looked up through that library's own dependencies) comes from the
// reference BLAS (Debian's alternatives place it in a `blas/` folder).
std::string slow_blas_warning();

// The OpenBLAS core type whose kernels use the best of these instruction sets: "Cooperlake"
// (AVX-512 with BF16), "SkylakeX" (AVX-512 F/CD/BW/DQ/VL), "Haswell" (AVX2 + FMA), else empty.
std::string openblas_core_for(bool avx2_fma, bool avx512, bool avx512_bf16);
// The same for the CPU this runs on (instruction sets the CPU and the OS support).
std::string openblas_core_for_this_cpu();

// The OpenBLAS core type LibTorch's BLAS runs ("Prescott", "Cooperlake", ...; openblas_get_corename),
// empty when that BLAS is not a dynamic-architecture OpenBLAS.
std::string openblas_core();

// When LibTorch's BLAS is a dynamic-architecture OpenBLAS that fell back to its Prescott
// kernels on a CPU with AVX2/AVX-512, re-initialises it with the kernels of the CPU's
// instruction sets (openblas_core_for_this_cpu(), as OPENBLAS_CORETYPE would), and says so
// ("OpenBLAS kernels: Prescott -> Cooperlake (...)"); else changes nothing and returns empty. An
// OPENBLAS_CORETYPE set by the user is left to OpenBLAS (OPENBLAS_CORETYPE=Prescott keeps the
// fallback). Runs once per process (later calls return the first call's message): call it
// before any thread uses the BLAS, as the model library's entry points (Detector, the
// trainer, the plugin's loading) do.
std::string select_openblas_kernels();

}  // namespace ssd
