// tinyds/data/tokenizer.h — character-level tokenizer with special tokens (DESIGN section 5).
//
// Ids: 0 <pad>, 1 <bos>, 2 <eos>, 3 <think>, 4 </think> (reasoning tags, reserved for R1-style prompts),
// then '\n' and the printable ASCII characters ' '..'~'. The vocab (id -> string) is saved with every
// checkpoint, so a checkpoint decodes with the vocabulary it was trained with.
#pragma once
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

namespace tinyds {

class Tokenizer {
 public:
  static constexpr int PAD = 0, BOS = 1, EOS = 2, THINK = 3, END_THINK = 4;

  Tokenizer();  // the default vocabulary described above
  int vocab_size() const;  // number of ids in use (the model's vocab_size must be >= this)
  // Characters to ids. A character outside the vocab is a tinyds::Error naming the character (printable or as
  // \xNN) and its 0-based position in s. Special tokens are never produced by encode().
  std::vector<int> encode(const std::string& s) const;
  // Ids to text; special tokens render as "<bos>", "<eos>", ...; an id outside the vocab is an error naming it.
  std::string decode(const std::vector<int>& ids) const;
  std::string token_string(int id) const;

  nlohmann::json to_json() const;  // {"type": "char", "tokens": ["<pad>", "<bos>", ...]}
  // Rebuilds a tokenizer from to_json() output; `where` prefixes error messages (e.g. the checkpoint path).
  static Tokenizer from_json(const nlohmann::json& j, const std::string& where);

 private:
  std::vector<std::string> id_to_str_;  // specials are multi-char names, others single chars
  int char_to_id_[256];                 // -1 where the byte is not in the vocab
};

}  // namespace tinyds
