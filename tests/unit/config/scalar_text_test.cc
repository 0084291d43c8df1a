#include "config/scalar_text.h"

#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

namespace kvmock {
namespace {

TEST(ScalarText, UnsignedAcceptsOnlyDecimalDigits) {
  EXPECT_EQ(parse_unsigned("42").value, 42u);
  EXPECT_EQ(parse_unsigned("+7").value, 7u);
  EXPECT_EQ(parse_unsigned("-0").status, UnsignedParse::kOk);
  EXPECT_EQ(parse_unsigned("18446744073709551615").value, 18446744073709551615ull);
  EXPECT_EQ(parse_unsigned("18446744073709551616").status, UnsignedParse::kTooBig);
  EXPECT_EQ(parse_unsigned("-1").status, UnsignedParse::kNegative);
  EXPECT_EQ(parse_unsigned("-99999999999999999999").status, UnsignedParse::kNegative);
  for (const char* bad : {"", "+", "0x10", "1e3", "1.0", " 1", "1 ", "1_000"}) {
    EXPECT_EQ(parse_unsigned(bad).status, UnsignedParse::kNotAnInteger) << bad;
  }
}

TEST(ScalarText, BoolAcceptsYaml12CoreSpellingsOnly) {
  EXPECT_EQ(parse_bool("true"), true);
  EXPECT_EQ(parse_bool("FALSE"), false);
  for (const char* bad : {"yes", "on", "1", "", "tRue"}) EXPECT_FALSE(parse_bool(bad)) << bad;
}

TEST(ScalarText, DoubleAcceptsFiniteDecimalsOnly) {
  EXPECT_EQ(parse_double("1"), 1.0);
  EXPECT_EQ(parse_double("+0.5"), 0.5);
  EXPECT_EQ(parse_double("-2e3"), -2000.0);
  for (const char* bad : {"", "inf", "nan", ".inf", "1.0x", "1e999", "0x1p3", "--1"}) {
    EXPECT_FALSE(parse_double(bad)) << bad;
  }
}

TEST(ScalarText, FormattedDoublesParseBackExactly) {
  EXPECT_EQ(format_double(14.0), "14.0");
  EXPECT_EQ(format_double(100000.0), "100000.0");
  EXPECT_EQ(format_double(0.5), "0.5");
  for (const double v : {0.1, 1e-7, 12345.678, 1e20, 3.0e-300}) {
    EXPECT_EQ(parse_double(format_double(v)), v) << format_double(v);
  }
}

TEST(ScalarText, QuotedStringsReadBackUnchangedByYamlCpp) {
  const std::vector<std::string> texts{
      "", "plain", "a\"b\\c", "x\ny\tz", "\x01\x7f", "# not a comment: {}", "\xc3\xa9\xe2\x82\xac"};
  for (const std::string& text : texts) {
    const YAML::Node node = YAML::Load("k: " + yaml_quote(text));
    EXPECT_EQ(node["k"].Scalar(), text) << yaml_quote(text);
  }
}

}  // namespace
}  // namespace kvmock
