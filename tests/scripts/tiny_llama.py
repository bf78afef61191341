"""A random byte-level LLaMA HF folder, for the tests that make their own model (and bank) with
the reference Python (torch, transformers, tokenizers)."""
import os

from tokenizers import Tokenizer, decoders, models, pre_tokenizers
from transformers import LlamaConfig, LlamaForCausalLM


def write_byte_level_llama(model_dir, hidden, intermediate):
    """Writes MODEL_DIR: tokenizer.json (byte-level BPE without merges; <unk>, <s>, </s> are
    ids 0-2, then the 256 byte symbols) and a 2-layer LLaMA (4 heads, 2 KV heads, untied head)
    initialised from torch's current seed. Returns the tokenizer."""
    os.makedirs(model_dir)
    vocab = {"<unk>": 0, "<s>": 1, "</s>": 2}
    for ch in sorted(pre_tokenizers.ByteLevel.alphabet()):
        vocab[ch] = len(vocab)
    tok = Tokenizer(models.BPE(vocab, [], unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.add_special_tokens(["<unk>", "<s>", "</s>"])
    tok.save(os.path.join(model_dir, "tokenizer.json"))
    config = LlamaConfig(vocab_size=len(vocab), hidden_size=hidden, intermediate_size=intermediate,
                         num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                         max_position_embeddings=512, rms_norm_eps=1e-5, initializer_range=0.1,
                         tie_word_embeddings=False, bos_token_id=1, eos_token_id=2, pad_token_id=0)
    LlamaForCausalLM(config).save_pretrained(model_dir, safe_serialization=True)
    return tok
