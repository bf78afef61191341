#include "launcher/cli.h"

#include <gtest/gtest.h>

#include <fstream>

#include "temp_dir.h"

namespace kmoe {
namespace {

std::vector<Subcommand> test_table() {
  Subcommand score{"score", "score adapters",
                   [](po::options_description& d, po::positional_options_description& p) {
                     d.add_options()("batch-size", po::value<int>()->default_value(8), "batch")(
                         "model", po::value<std::string>(), "model dir")("chat", po::bool_switch(), "chat template")(
                         "bank", po::value<std::string>()->required(), "bank");
                     (void)p;
                   },
                   [](const po::variables_map&) { return 0; }};
  Subcommand embed{"embed", "embed corpus",
                   [](po::options_description& d, po::positional_options_description& p) {
                     d.add_options()("encoder", po::value<std::string>(), "encoder")(
                         "inputs", po::value<std::vector<std::string>>()->multitoken(), "files");
                     p.add("inputs", -1);
                   },
                   [](const po::variables_map&) { return 0; }};
  return {score, embed};
}

std::string write_file(const testing::TempDir& dir, const std::string& name, const std::string& text) {
  const std::string path = dir / name;
  std::ofstream(path) << text;
  return path;
}

TEST(Cli, ParsesSubcommandOptionsAndDefaults) {
  const auto table = test_table();
  auto cmd = cli_parse(table, {"score", "--bank", "b", "--chat"});
  ASSERT_NE(cmd.command, nullptr);
  EXPECT_EQ(cmd.command->name, "score");
  EXPECT_EQ(cmd.vm["bank"].as<std::string>(), "b");
  EXPECT_EQ(cmd.vm["batch-size"].as<int>(), 8);
  EXPECT_TRUE(cmd.vm["chat"].as<bool>());
  EXPECT_EQ(cmd.vm["log-level"].as<std::string>(), "info");
}

TEST(Cli, PositionalArguments) {
  auto cmd = cli_parse(test_table(), {"embed", "a.jsonl", "b.jsonl"});
  EXPECT_EQ(cmd.vm["inputs"].as<std::vector<std::string>>(), (std::vector<std::string>{"a.jsonl", "b.jsonl"}));
}

TEST(Cli, HelpAndVersion) {
  const auto table = test_table();
  auto top = cli_parse(table, {"--help"});
  EXPECT_TRUE(top.help);
  EXPECT_NE(top.help_text.find("score"), std::string::npos);
  EXPECT_NE(top.help_text.find("embed"), std::string::npos);
  auto sub = cli_parse(table, {"score", "--help"});  // --help wins over a missing required option
  EXPECT_TRUE(sub.help);
  EXPECT_NE(sub.help_text.find("--batch-size"), std::string::npos);
  EXPECT_NE(sub.help_text.find("--config"), std::string::npos);
  EXPECT_TRUE(cli_parse(table, {"--version"}).version);
}

TEST(Cli, UnknownSubcommandListsValidOnes) {
  try {
    cli_parse(test_table(), {"scroe"});
    FAIL() << "expected UsageError";
  } catch (const UsageError& e) {
    EXPECT_NE(std::string(e.what()).find("scroe"), std::string::npos);
    EXPECT_NE(std::string(e.what()).find("score, embed"), std::string::npos);
  }
  EXPECT_THROW(cli_parse(test_table(), {}), UsageError);
}

TEST(Cli, UnknownOptionListsValidOnes) {
  try {
    cli_parse(test_table(), {"score", "--bank", "b", "--batchsize", "3"});
    FAIL() << "expected UsageError";
  } catch (const UsageError& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("--batchsize"), std::string::npos) << msg;
    EXPECT_NE(msg.find("--batch-size"), std::string::npos) << msg;
    EXPECT_NE(msg.find("--config"), std::string::npos) << msg;
  }
}

TEST(Cli, BadValuesAndMissingRequired) {
  EXPECT_THROW(cli_parse(test_table(), {"score", "--bank", "b", "--batch-size", "eight"}), UsageError);
  EXPECT_THROW(cli_parse(test_table(), {"score"}), UsageError);            // --bank is required
  EXPECT_THROW(cli_parse(test_table(), {"score", "--bank"}), UsageError);  // missing value
  EXPECT_THROW(cli_parse(test_table(), {"score", "--bank", "b", "stray"}), UsageError);
}

TEST(Cli, ConfigPrecedenceCommandLineOverSectionOverTopLevel) {
  testing::TempDir dir;
  const auto cfg = write_file(dir, "run.ini",
                              "# pipeline config\n"
                              "batch-size = 2\n"
                              "model = top-model\n"
                              "bank = top-bank\n"
                              "encoder = minilm   ; used by embed only\n"
                              "\n[score]\n"
                              "model = score-model\n"
                              "chat = true\n"
                              "[embed]\n"
                              "encoder = bge\n");
  auto cmd = cli_parse(test_table(), {"score", "--config", cfg, "--batch-size", "16"});
  EXPECT_EQ(cmd.vm["batch-size"].as<int>(), 16);                // command line wins
  EXPECT_EQ(cmd.vm["model"].as<std::string>(), "score-model");  // section beats top level
  EXPECT_EQ(cmd.vm["bank"].as<std::string>(), "top-bank");      // top level fills the rest
  EXPECT_TRUE(cmd.vm["chat"].as<bool>());
  auto embed = cli_parse(test_table(), {"embed", "--config", cfg});
  EXPECT_EQ(embed.vm["encoder"].as<std::string>(), "bge");
  // required options may come from the file
  auto from_file = cli_parse(test_table(), {"score", "--config", cfg});
  EXPECT_EQ(from_file.vm["batch-size"].as<int>(), 2);
}

TEST(Cli, ConfigListValuesAreSplitOnBlanks) {
  testing::TempDir dir;
  const auto cfg = write_file(dir, "run.ini", "[embed]\ninputs = a.jsonl  b.jsonl\tc.jsonl\nencoder = two words\n");
  auto cmd = cli_parse(test_table(), {"embed", "--config", cfg});
  EXPECT_EQ(cmd.vm["inputs"].as<std::vector<std::string>>(),
            (std::vector<std::string>{"a.jsonl", "b.jsonl", "c.jsonl"}));
  EXPECT_EQ(cmd.vm["encoder"].as<std::string>(), "two words");  // a single value keeps its blanks
}

TEST(Cli, ConfigErrorsNameFileAndLine) {
  testing::TempDir dir;
  auto expect_error = [&](const std::string& text, const std::string& needle) {
    const auto cfg = write_file(dir, "bad.ini", text);
    try {
      cli_parse(test_table(), {"score", "--bank", "b", "--config", cfg});
      ADD_FAILURE() << "expected UsageError for: " << text;
    } catch (const UsageError& e) {
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
  };
  expect_error("batch-size = 1\nnonsense line\n", "bad.ini:2: expected 'key = value'");
  expect_error("\n\nbatchsize = 1\n", "bad.ini:3: unknown option 'batchsize'");
  expect_error("[score]\nencoder = x\n", "bad.ini:2: unknown option 'encoder'");  // embed's key in [score]
  expect_error("[scroe]\nmodel = x\n", "bad.ini:2: unknown section [scroe]");
  expect_error("batch-size = many\n", "bad.ini:1:");
  expect_error("[score\n", "bad.ini:1: malformed section header");
  EXPECT_THROW(cli_parse(test_table(), {"score", "--config", dir / "missing.ini"}), UsageError);
  // a duplicate key is an error even when its first value is valid and the second is not
  expect_error("[score]\nbatch-size = 4\nmodel = m\nbatch-size = many\n", "bad.ini:4: 'batch-size' is set twice in [score] (first on line 2)");
  try {
    cli_parse(test_table(), {"score", "--bank", "b", "--config", dir.path.string()});
    ADD_FAILURE() << "a folder taken as a config";
  } catch (const UsageError& e) {
    EXPECT_NE(std::string(e.what()).find("is a folder"), std::string::npos) << e.what();
  }
}

TEST(Cli, ConfigWithAByteOrderMarkReadsAsWithout) {
  testing::TempDir dir;
  const auto cfg = write_file(dir, "bom.ini", "\xEF\xBB\xBF" "batch-size = 3\n");
  EXPECT_EQ(cli_parse(test_table(), {"score", "--bank", "b", "--config", cfg}).vm["batch-size"].as<int>(), 3);
}

TEST(Cli, NonFiniteNumbersAreRefused) {
  Subcommand train{"train", "train",
                   [](po::options_description& d, po::positional_options_description&) {
                     d.add_options()("lr", po::value<double>()->default_value(1e-4), "learning rate");
                   },
                   [](const po::variables_map&) { return 0; }};
  EXPECT_DOUBLE_EQ(cli_parse({train}, {"train", "--lr", "0.5"}).vm["lr"].as<double>(), 0.5);
  for (const char* bad : {"nan", "inf", "-inf"}) {
    try {
      cli_parse({train}, {"train", "--lr", bad});
      ADD_FAILURE() << "--lr " << bad << " accepted";
    } catch (const UsageError& e) {
      EXPECT_NE(std::string(e.what()).find("--lr must be a finite number"), std::string::npos) << e.what();
    }
  }
}

}  // namespace
}  // namespace kmoe
