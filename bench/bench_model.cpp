// Model-only and Detector throughput: images/s by body x batch x precision x device.
//   bench_model [--bodies tiny,resnet34] [--batches 1,8,64] [--precisions fp32,fp16]
//               [--devices cpu,cuda] [--seconds 3] [--frame 640x480] [--threads N]
//               [--model FILE] [--threshold 0.3] [--in-flight 2] [--save-dir DIR]
//               [--cuda-graphs true]
// Prints a Markdown table: "model" rows time SSD forward on a ready (B,3,S,S) tensor
// (channels-last weights and input, as ssd::Detector runs it); on CUDA
// "model graph" rows the same forward replayed as a CUDA graph (model/cuda_graph.h);
// "postprocess" rows the output stage alone on those outputs (decode, --threshold, top-k, NMS,
// download; with random weights few candidates pass 0.3, --threshold 0 is the worst case);
// "detector" rows time ssd::Detector::detect on raw RGBx frames of --frame size (upload,
// convert, resize, normalise, forward, decode, NMS, download); "postprocess fixed" rows the
// fixed-shape, sync-free output stage the Detector uses on CUDA; "detector ... in flight" rows
// pipeline the Detector with submit()/collect(), --in-flight batches outstanding (skipped when
// 1), and on CUDA "detector ... pinned" rows do so with the frames in page-locked memory
// (uploaded in place, no staging copy). The detector rows use CUDA graphs on CUDA unless --cuda-graphs false. Medians over
// repeats, after warm-up.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <string>
#include <vector>

#include <ATen/Context.h>
#include <CLI/CLI.hpp>
#include <c10/core/StreamGuard.h>
#include <c10/core/impl/VirtualGuardImpl.h>
#include <torch/cuda.h>
#include <torch/types.h>
#include <torch/utils.h>

#include "anchors.h"
#include "blas_check.h"
#include "cuda_graph.h"
#include "detector.h"
#include "host_buffer.h"
#include "nms.h"
#include "ssd_model.h"
#include "text.h"
#include "weights.h"

namespace {

// The non-empty items of a comma-separated option.
std::vector<std::string> split(const std::string& s) {
  std::vector<std::string> out;
  for (auto& item : ssd::split_list(s))
    if (!item.empty()) out.push_back(std::move(item));
  return out;
}

void sync(const torch::Device& d) {
  if (d.is_cuda()) torch::cuda::synchronize(d.index());
}

// Runs fn repeatedly for about `seconds`, in rounds; returns the median seconds per call.
template <typename Fn>
double median_seconds(Fn&& fn, const torch::Device& d, double seconds) {
  for (int i = 0; i < 3; ++i) fn();   // warm-up
  sync(d);
  std::vector<double> per_call;
  const auto t_end = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
  while (per_call.size() < 5 || std::chrono::steady_clock::now() < t_end) {
    const int reps = 3;
    auto t0 = std::chrono::steady_clock::now();
    for (int i = 0; i < reps; ++i) fn();
    sync(d);
    per_call.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() /
                       reps);
    if (per_call.size() > 200) break;
  }
  std::sort(per_call.begin(), per_call.end());
  return per_call[per_call.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"SSD model-only and Detector throughput"};
  std::string bodies = "tiny,resnet34", batches = "1,8,64", precisions = "fp32,fp16",
              devices = torch::cuda::is_available() ? "cpu,cuda" : "cpu", frame = "640x480",
              model_path, save_dir;
  double seconds = 3;
  int threads = 0, in_flight = 2;
  bool cuda_graphs = true;
  float threshold = ssd::DetectorOptions{}.threshold;
  app.add_option("--bodies", bodies, "comma-separated bodies");
  app.add_option("--batches", batches, "comma-separated batch sizes");
  app.add_option("--precisions", precisions, "fp32,fp16 (fp16 only on CUDA)");
  app.add_option("--devices", devices, "cpu,cuda");
  app.add_option("--seconds", seconds, "time per measurement");
  app.add_option("--frame", frame, "raw frame size for the detector rows, WxH");
  app.add_option("--model", model_path, "also time this weights file (as body 'file')");
  app.add_option("--threads", threads, "CPU threads (0 = LibTorch default)");
  app.add_option("--threshold", threshold,
                 "score threshold of the postprocess and detector rows (0: the worst case, "
                 "pre_nms_top_k candidates enter NMS)");
  app.add_option("--save-dir", save_dir,
                 "keep the random-weights model of each body there as BODY.safetensors (e.g. for bench_pipeline.sh)");
  app.add_option("--in-flight", in_flight, "batches outstanding in the pipelined detector rows (1: skip them)")
      ->check(CLI::Range(1, 16));
  app.add_option("--cuda-graphs", cuda_graphs, "detector rows: CUDA graphs on CUDA (true/false)");
  CLI11_PARSE(app, argc, argv);
  if (threads > 0) torch::set_num_threads(threads);
  int fw = 640, fh = 480;
  if (std::sscanf(frame.c_str(), "%dx%d", &fw, &fh) != 2) {
    std::cerr << "bad --frame " << frame << "\n";
    return 2;
  }
  const auto tmp = save_dir.empty() ? std::filesystem::temp_directory_path() / "ssd-bench"
                                    : std::filesystem::path(save_dir);
  std::filesystem::create_directories(tmp);

  if (const auto slow = ssd::slow_blas_warning(); !slow.empty()) std::cout << "> warning: " << slow << "\n\n";
  if (const auto kernels = ssd::select_openblas_kernels(); !kernels.empty()) std::cout << "> " << kernels << "\n\n";
  std::cout << "| what | body | device | precision | batch | images/s | ms/batch |\n"
            << "|---|---|---|---|---:|---:|---:|\n";
  std::vector<std::string> body_list = split(bodies);
  // --model adds the body "file" (once: `--bodies file --model M` times it alone).
  if (!model_path.empty() && std::find(body_list.begin(), body_list.end(), "file") == body_list.end())
    body_list.push_back("file");
  for (const auto& body : body_list) {
    std::string path = model_path;
    if (body != "file") {
      ssd::SsdConfig c;
      c.body = body;
      c.labels = {"a", "b", "c", "d"};
      if (body.rfind("tiny", 0) == 0) {
        c.head_channels = 128;
      }
      ssd::Ssd m(c);
      path = (tmp / (body + ".safetensors")).string();
      ssd::save_weights(path, m);
    }
    for (const auto& dev : split(devices)) {
      if (dev == "cuda" && !torch::cuda::is_available()) continue;
      torch::Device device = dev == "cuda" ? torch::Device(torch::kCUDA, 0) : torch::Device(torch::kCPU);
      // cuDNN picks its fastest algorithms for the fixed shapes, as ssd::Detector has it do: the
      // model rows are then measured as the element runs the network.
      if (device.is_cuda()) at::globalContext().setBenchmarkCuDNN(true);
      for (const auto& prec : split(precisions)) {
        const bool half = prec == "fp16";
        if (half && !device.is_cuda()) continue;
        auto model = ssd::load_weights(path, device);
        model->fuse_for_inference();   // as ssd::Detector runs it
        if (half) model->to(torch::kHalf);
        model->to_channels_last();   // as ssd::Detector runs it on every device
        const int S = model->config().input_size;
        for (const auto& bs : split(batches)) {
          const int B = std::stoi(bs);
          auto x = torch::randn({B, 3, S, S}, torch::TensorOptions().device(device)
                                                  .dtype(half ? torch::kHalf : torch::kFloat32))
                       .contiguous(torch::MemoryFormat::ChannelsLast);
          c10::InferenceMode guard;
          const double s = median_seconds([&] { model->forward(x); }, device, seconds);
          std::printf("| model | %s | %s | %s | %d | %.1f | %.2f |\n", body.c_str(), dev.c_str(),
                      prec.c_str(), B, B / s, s * 1e3);
          std::fflush(stdout);
          if (device.is_cuda() && ssd::cuda_graphs_compiled()) {
            // The same forward as one CUDA graph, captured on a stream of its own after warm-up.
            const c10::impl::VirtualGuardImpl cuda(c10::DeviceType::CUDA);
            c10::StreamGuard on_stream(cuda.getStreamFromGlobalPool(device));
            for (int i = 0; i < 3; ++i) model->forward(x);
            try {
              ssd::StaticGraph graph(ssd::GraphKind::Cuda, x, [&](const torch::Tensor& in) {
                auto out = model->forward(in);
                return std::vector<torch::Tensor>{out.first, out.second};
              });
              const double sg = median_seconds([&] { graph.run(x); }, device, seconds);
              std::printf("| model graph | %s | %s | %s | %d | %.1f | %.2f |\n", body.c_str(), dev.c_str(),
                          prec.c_str(), B, B / sg, sg * 1e3);
            } catch (const std::exception& e) {   // the other rows go on; the Detector falls back too
              std::string why = e.what();
              why = why.substr(0, why.find('\n'));
              std::replace(why.begin(), why.end(), '|', '/');
              std::printf("| model graph | %s | %s | %s | %d | capture failed | %s |\n", body.c_str(), dev.c_str(),
                          prec.c_str(), B, why.c_str());
            }
            std::fflush(stdout);
          }
          // The output stage alone (decode, threshold, top-k, NMS, one download) on this model's
          // outputs for the same input, with the Detector's default post-processing options.
          {
            const auto out = model->forward(x);
            const auto anchors = ssd::make_anchors(model->config()).to(device);
            ssd::PostprocessOptions pp;
            pp.score_threshold = threshold;
            pp.pre_nms_top_k = std::max(400, 4 * pp.max_detections);   // as the Detector sets it
            const double sp = median_seconds(
                [&] {
                  auto dets = ssd::postprocess(out.first, out.second, anchors, pp);
                  for (auto& d : dets) d.boxes.to(torch::kCPU);
                },
                device, seconds);
            std::printf("| postprocess | %s | %s | %s | %d | %.1f | %.2f |\n", body.c_str(),
                        dev.c_str(), prec.c_str(), B, B / sp, sp * 1e3);
            const double sf = median_seconds(
                [&] {
                  auto f = ssd::postprocess_fixed(out.first, out.second, anchors, pp);
                  f.packed.to(torch::kCPU);
                },
                device, seconds);
            std::printf("| postprocess fixed | %s | %s | %s | %d | %.1f | %.2f |\n", body.c_str(),
                        dev.c_str(), prec.c_str(), B, B / sf, sf * 1e3);
            std::fflush(stdout);
          }
          // The whole Detector on raw frames.
          ssd::DetectorOptions o;
          o.model_path = path;
          o.device = dev;
          o.fp16 = half;
          o.threshold = threshold;
          o.cuda_graphs = cuda_graphs;
          ssd::Detector det(o);
          std::vector<uint8_t> px(size_t(fw) * fh * 4, 90);
          for (size_t i = 0; i < px.size(); ++i) px[i] = static_cast<uint8_t>((i * 2654435761u) >> 24);
          ssd::FrameView f{ssd::PixelFormat::RGBx, fw, fh, {px.data()}, {fw * 4}, {}};
          std::vector<ssd::FrameView> frames(B, f);
          const double sd = median_seconds([&] { det.detect(frames); }, device, seconds);
          std::printf("| detector %dx%d RGBx | %s | %s | %s | %d | %.1f | %.2f |\n", fw, fh,
                      body.c_str(), dev.c_str(), prec.c_str(), B, B / sd, sd * 1e3);
          std::fflush(stdout);
          if (in_flight > 1) {
            // Steady state of a pipelined stream: each step submits a batch and collects the
            // one submitted in_flight - 1 steps earlier.
            o.max_in_flight = in_flight;
            ssd::Detector piped(o);
            auto pipelined = [&](const std::vector<ssd::FrameView>& batch) {
              for (int i = 0; i < in_flight - 1; ++i) piped.submit(batch);
              const double t = median_seconds(
                  [&] {
                    piped.submit(batch);
                    piped.collect();
                  },
                  device, seconds);
              while (piped.in_flight() > 0) piped.collect();
              return t;
            };
            const double sq = pipelined(frames);
            std::printf("| detector %dx%d RGBx, %d in flight | %s | %s | %s | %d | %.1f | %.2f |\n", fw, fh,
                        in_flight, body.c_str(), dev.c_str(), prec.c_str(), B, B / sq, sq * 1e3);
            std::fflush(stdout);
            if (device.is_cuda()) {
              // The same with the frames in page-locked memory (FrameView::pinned): uploaded in
              // place, without the copy into staging memory.
              ssd::HostBuffer block(px.size(), true);
              std::memcpy(block.data(), px.data(), px.size());
              ssd::FrameView pf = f;
              pf.planes[0] = block.data();
              pf.pinned = true;
              const double sp = pipelined(std::vector<ssd::FrameView>(B, pf));
              std::printf("| detector %dx%d RGBx pinned, %d in flight | %s | %s | %s | %d | %.1f | %.2f |\n", fw,
                          fh, in_flight, body.c_str(), dev.c_str(), prec.c_str(), B, B / sp, sp * 1e3);
              std::fflush(stdout);
            }
          }
        }
      }
    }
  }
  return 0;
}
