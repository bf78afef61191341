// See grad_buckets.h. Each parameter has a slot in a flat float32 bucket; its gradient
// hook (run by autograd before the gradient is accumulated into .grad) copies the step's
// whole gradient (this backward's plus what earlier micro-batches accumulated) into the
// slot, and a bucket whose slots are all filled is all-reduced at once.
//
// Ordering: MPI (and NCCL) need every rank to start the same collectives in the same
// order. Backward visits parameters in the same order on every rank only if the graphs
// are the same, so buckets are started strictly in bucket index order: a full bucket
// waits until every bucket before it has started, and finish() fills and starts the ones
// that never filled (parameters without a gradient this backward) in that same order.
#include "trainer/grad_buckets.h"

#include <ATen/ATen.h>

#include <stdexcept>
#include <string>
#include <unordered_set>

namespace kmoe {

// (named, not in an anonymous namespace: GradientBucketsState, declared in the header, holds them)
struct GradSlot {
  at::Tensor param;
  int64_t bucket = 0;
  int64_t offset = 0;  // in elements, within the bucket
  int64_t numel = 0;
  unsigned hook = 0;
  bool filled = false;
};

struct GradBucket {
  at::Tensor flat;            // [elements] float32 on the communicator's device
  std::vector<size_t> slots;  // indices into GradientBucketsState::slots
  size_t filled = 0;
  std::unique_ptr<Communicator::Pending> pending;
  bool started = false;
};

struct GradientBucketsState {
  Communicator* comm = nullptr;
  std::vector<GradSlot> slots;
  std::vector<GradBucket> buckets;
  size_t next_to_start = 0;  // buckets [0, next_to_start) have started this step
  bool sync = true;

  at::Tensor slot_view(const GradSlot& slot) {
    return buckets[slot.bucket].flat.narrow(0, slot.offset, slot.numel).view(slot.param.sizes());
  }

  // Starts every full bucket that is next in index order.
  void start_ready() {
    while (next_to_start < buckets.size()) {
      GradBucket& b = buckets[next_to_start];
      if (b.filled < b.slots.size()) break;
      b.pending = comm->allreduce_sum_async(b.flat);
      b.started = true;
      ++next_to_start;
    }
    // Let started sums progress: MPI only advances them inside MPI calls.
    for (size_t i = 0; i < next_to_start; ++i) {
      if (buckets[i].pending) buckets[i].pending->test();
    }
  }

  // The hook of slot `index`: `grad` is this backward's gradient of the parameter.
  void on_grad(size_t index, const at::Tensor& grad) {
    if (!sync) return;
    GradSlot& slot = slots[index];
    if (slot.filled) {
      throw std::runtime_error("GradientBuckets: parameter " + std::to_string(index) +
                               " got a second gradient in one synced backward; call finish() after each synced "
                               "backward");
    }
    at::NoGradGuard no_grad;
    at::Tensor view = slot_view(slot);
    at::Tensor& accumulated = slot.param.mutable_grad();
    if (accumulated.defined()) {
      at::add_out(view, accumulated, grad);
      // Autograd now sets .grad to this backward's gradient instead of adding into the
      // old one in place, which may be a view of a bucket that is being reduced.
      accumulated = at::Tensor();
    } else {
      view.copy_(grad);
    }
    slot.filled = true;
    ++buckets[slot.bucket].filled;
    start_ready();
  }
};

GradientBuckets::GradientBuckets(Communicator& comm, std::vector<at::Tensor> params, int64_t bucket_bytes)
    : state_(std::make_unique<GradientBucketsState>()) {
  if (bucket_bytes <= 0) throw std::invalid_argument("GradientBuckets: bucket_bytes must be positive");
  state_->comm = &comm;
  std::unordered_set<const void*> seen;
  for (size_t i = 0; i < params.size(); ++i) {
    const at::Tensor& p = params[i];
    const std::string name = "GradientBuckets: parameter " + std::to_string(i);
    if (!p.defined()) throw std::invalid_argument(name + " is undefined");
    if (!p.is_leaf() || !p.requires_grad())
      throw std::invalid_argument(name + " is not a leaf tensor that requires grad");
    if (p.scalar_type() != c10::kFloat) {
      throw std::invalid_argument(name + " is " + std::string(c10::toString(p.scalar_type())) + ", not float32");
    }
    if (p.device() != comm.device()) {
      throw std::invalid_argument(name + " is on " + p.device().str() + " but the communicator is on " +
                                  comm.device().str());
    }
    if (!seen.insert(p.unsafeGetTensorImpl()).second) throw std::invalid_argument(name + " is listed twice");
  }

  // Parameters in reverse order, roughly the order backward produces their gradients;
  // a bucket closes once it holds at least bucket_bytes.
  const int64_t bucket_elements = std::max<int64_t>(1, bucket_bytes / static_cast<int64_t>(sizeof(float)));
  auto& slots = state_->slots;
  auto& buckets = state_->buckets;
  slots.resize(params.size());
  int64_t offset = 0;
  for (size_t k = params.size(); k-- > 0;) {
    if (buckets.empty() || offset >= bucket_elements) {
      buckets.emplace_back();
      offset = 0;
    }
    GradSlot& slot = slots[k];
    slot.param = params[k];
    slot.bucket = static_cast<int64_t>(buckets.size()) - 1;
    slot.offset = offset;
    slot.numel = params[k].numel();
    offset += slot.numel;
    buckets.back().slots.push_back(k);
  }
  for (GradBucket& b : buckets) {
    int64_t elements = 0;
    for (size_t k : b.slots) elements += slots[k].numel;
    b.flat = at::zeros({elements}, at::TensorOptions().dtype(at::kFloat).device(comm.device()));
  }
  GradientBucketsState* state = state_.get();
  for (size_t k = 0; k < slots.size(); ++k) {
    slots[k].hook = slots[k].param.register_hook([state, k](const at::Tensor& grad) { state->on_grad(k, grad); });
  }
}

GradientBuckets::~GradientBuckets() {
  for (GradSlot& slot : state_->slots) slot.param.remove_hook(slot.hook);
  for (GradBucket& b : state_->buckets) b.pending.reset();  // waits for a sum still in flight
}

void GradientBuckets::set_sync(bool sync) {
  state_->sync = sync;
}

void GradientBuckets::finish() {
  auto& st = *state_;
  at::NoGradGuard no_grad;
  // Fill what backward did not: a parameter without a gradient this backward contributes
  // what earlier micro-batches accumulated, or zeros. Buckets start in index order.
  for (size_t i = st.next_to_start; i < st.buckets.size(); ++i) {
    GradBucket& b = st.buckets[i];
    for (size_t k : b.slots) {
      GradSlot& slot = st.slots[k];
      if (slot.filled) continue;
      at::Tensor view = st.slot_view(slot);
      const at::Tensor& accumulated = slot.param.grad();
      if (accumulated.defined()) {
        view.copy_(accumulated);
      } else {
        view.zero_();
      }
      slot.filled = true;
      ++b.filled;
    }
  }
  st.start_ready();
  for (GradBucket& b : st.buckets) {
    b.pending->wait();
    b.pending.reset();
  }
  // The reduced gradients are views of the buckets: no copy. The next synced backward
  // writes the bucket only after its hook has taken the old gradient out of .grad.
  for (GradSlot& slot : st.slots) {
    slot.param.mutable_grad() = st.slot_view(slot);
    slot.filled = false;
  }
  for (GradBucket& b : st.buckets) {
    b.filled = 0;
    b.started = false;
  }
  st.next_to_start = 0;
}

int64_t GradientBuckets::bucket_count() const {
  return static_cast<int64_t>(state_->buckets.size());
}

int64_t GradientBuckets::bucket_elements(int64_t bucket) const {
  if (bucket < 0 || bucket >= bucket_count()) {
    throw std::out_of_range("GradientBuckets::bucket_elements: bucket " + std::to_string(bucket) + " of " +
                            std::to_string(bucket_count()));
  }
  return state_->buckets[static_cast<size_t>(bucket)].flat.numel();
}

}  // namespace kmoe
