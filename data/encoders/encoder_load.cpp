// See encoder_load.h.
#include "data/encoders/encoder_load.h"

#include <stdexcept>

#include "data/encoders/bert_encoder.h"
#include "data/encoders/decoder_encoder.h"

namespace kmoe {

std::unique_ptr<SentenceEncoder> encoder_load(const EncoderSpec& spec) {
  if (spec.max_tokens < 0) throw std::invalid_argument("the encoder's token limit must be >= 0");
  if (!spec.pooling.empty() && spec.pooling != "mean" && spec.pooling != "cls") {
    throw std::invalid_argument("encoder pooling must be mean or cls, not '" + spec.pooling + "'");
  }
  if (spec.model.empty()) throw std::invalid_argument("no encoder model given");
  if (spec.kind == "decoder") {
    if (!spec.pooling.empty() && spec.pooling != "mean")
      throw std::invalid_argument("the decoder encoder pools by mean only");
    DecoderEncoderOptions o;
    o.normalize = spec.normalize.value_or(true);
    o.prefix = spec.prefix;
    if (spec.max_tokens > 0) o.max_tokens = spec.max_tokens;
    o.threads = spec.threads;
    o.dtype = spec.dtype;
    return decoder_encoder_load(spec.model, o);
  }
  if (spec.kind == "bert") {
    BertEncoderOptions o;
    o.pooling = spec.pooling;
    o.normalize = spec.normalize;
    o.prefix = spec.prefix;
    o.max_tokens = spec.max_tokens;
    o.batch_size = spec.batch_size;
    o.threads = spec.threads;
    o.dtype = spec.dtype;
    return bert_encoder_load(spec.model, o);
  }
  throw std::invalid_argument("the encoder kind must be bert or decoder, not '" + spec.kind + "'");
}

EncoderSpec encoder_spec_of(const EncoderDescription& d) {
  EncoderSpec s;
  s.kind = d.kind;
  s.model = d.model;
  s.pooling = d.kind == "bert" ? d.pooling : "";
  s.normalize = d.normalize;
  s.prefix = d.prefix;
  s.max_tokens = d.max_tokens;
  return s;
}

std::string encoder_difference(const EncoderDescription& made, const EncoderDescription& now) {
  auto diff = [](const std::string& what, const std::string& a, const std::string& b) {
    return "its " + what + " was '" + a + "', this one's is '" + b + "'";
  };
  if (made.kind != now.kind) return diff("kind", made.kind, now.kind);
  if (made.model_sha256 != now.model_sha256) return diff("model sha256", made.model_sha256, now.model_sha256);
  if (made.pooling != now.pooling) return diff("pooling", made.pooling, now.pooling);
  if (made.normalize != now.normalize)
    return diff("normalisation", made.normalize ? "on" : "off", now.normalize ? "on" : "off");
  if (made.prefix != now.prefix) return diff("prefix", made.prefix, now.prefix);
  if (made.dim != now.dim) return diff("dimension", std::to_string(made.dim), std::to_string(now.dim));
  if (made.max_tokens != now.max_tokens)
    return diff("token limit", std::to_string(made.max_tokens), std::to_string(now.max_tokens));
  return "";
}

}  // namespace kmoe
