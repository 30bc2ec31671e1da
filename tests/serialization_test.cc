// Every type API.md lists survives serialization, directly and through the cluster
// (Put/Get and a task that echoes its argument).
#include <gtest/gtest.h>

#include <map>
#include <optional>
#include <string>
#include <tuple>
#include <unordered_map>
#include <vector>

#include "lumen/lumen.h"
#include "test_util.h"

struct Point {
  double x = 0;
  double y = 0;
  std::string label;
  std::vector<int> tags;
  bool operator==(const Point& o) const {
    return x == o.x && y == o.y && label == o.label && tags == o.tags;
  }
  LUMEN_SERIALIZE(x, y, label, tags);
};

enum class Color { kRed = 1, kBlue = 2 };
MSGPACK_ADD_ENUM(Color);

template <typename T>
T Echo(T value) {
  return value;
}
using Tuple = std::tuple<int, std::string, double>;
using Nested = std::map<std::string, std::vector<std::optional<Point>>>;

int EchoInt(int v) { return Echo(v); }
int64_t EchoInt64(int64_t v) { return Echo(v); }
uint8_t EchoU8(uint8_t v) { return Echo(v); }
double EchoDouble(double v) { return Echo(v); }
float EchoFloat(float v) { return Echo(v); }
bool EchoBool(bool v) { return Echo(v); }
char EchoChar(char v) { return Echo(v); }
std::string EchoString(std::string v) { return Echo(v); }
std::vector<double> EchoVector(std::vector<double> v) { return Echo(v); }
std::map<std::string, int> EchoMap(std::map<std::string, int> v) { return Echo(v); }
std::unordered_map<int, std::string> EchoUnorderedMap(std::unordered_map<int, std::string> v) {
  return Echo(v);
}
std::pair<int, std::string> EchoPair(std::pair<int, std::string> v) { return Echo(v); }
Tuple EchoTuple(Tuple v) { return Echo(v); }
std::optional<int> EchoOptional(std::optional<int> v) { return Echo(v); }
Point EchoPoint(Point v) { return Echo(v); }
Nested EchoNested(Nested v) { return Echo(v); }
Color EchoColor(Color v) { return Echo(v); }
LUMEN_REMOTE(EchoInt, EchoInt64, EchoU8, EchoDouble, EchoFloat, EchoBool, EchoChar, EchoString,
             EchoVector, EchoMap, EchoUnorderedMap, EchoPair, EchoTuple, EchoOptional,
             EchoPoint, EchoNested, EchoColor);

namespace {

template <typename T>
T RoundTrip(const T& value) {
  std::vector<lumen::detail::RefData> nested;
  std::string bytes = lumen::detail::Serialize<T>(value, &nested);
  return lumen::detail::Deserialize<T>(bytes.data(), bytes.size());
}

Nested SampleNested() {
  return {{"a", {Point{1, 2, "p", {1, 2}}, std::nullopt}}, {"b", {}}};
}

TEST(SerializationTest, RoundTripsWithoutACluster) {
  EXPECT_EQ(RoundTrip(42), 42);
  EXPECT_EQ(RoundTrip<int64_t>(-(int64_t(1) << 40)), -(int64_t(1) << 40));
  EXPECT_EQ(RoundTrip(3.25), 3.25);
  EXPECT_EQ(RoundTrip(std::string("héllo\0x", 8)), std::string("héllo\0x", 8));
  EXPECT_EQ(RoundTrip(std::vector<int>{1, 2, 3}), (std::vector<int>{1, 2, 3}));
  EXPECT_EQ(RoundTrip(std::map<std::string, int>{{"a", 1}}),
            (std::map<std::string, int>{{"a", 1}}));
  EXPECT_EQ(RoundTrip(std::optional<int>()), std::nullopt);
  EXPECT_EQ(RoundTrip(Tuple{1, "x", 2.5}), (Tuple{1, "x", 2.5}));
  EXPECT_EQ(RoundTrip(Point{1, 2, "p", {3}}), (Point{1, 2, "p", {3}}));
  EXPECT_EQ(RoundTrip(SampleNested()), SampleNested());
  EXPECT_EQ(RoundTrip(Color::kBlue), Color::kBlue);
}

TEST(SerializationTest, WrongTypeFailsToDecode) {
  std::vector<lumen::detail::RefData> nested;
  std::string bytes = lumen::detail::Serialize<std::string>("text", &nested);
  EXPECT_THROW(lumen::detail::Deserialize<int>(bytes.data(), bytes.size()), std::exception);
}

static_assert(lumen::detail::IsSerializable<Point>::value);
static_assert(lumen::detail::IsSerializable<Nested>::value);
static_assert(lumen::detail::IsSerializable<std::vector<lumen::ObjectRef<int>>>::value);
struct NotSerializable {
  int x;
};
static_assert(!lumen::detail::IsSerializable<NotSerializable>::value);
static_assert(!lumen::detail::IsSerializable<std::vector<NotSerializable>>::value);

class ClusterSerializationTest : public lumen::test::ClusterTest {};

template <typename T, typename F>
void ExpectThroughCluster(F fn, const T& value) {
  EXPECT_EQ(*lumen::Get(lumen::Put(value)), value);
  EXPECT_EQ(*lumen::Get(lumen::Task(fn).Remote(value)), value);
}

TEST_F(ClusterSerializationTest, EveryListedTypeThroughPutAndTasks) {
  ExpectThroughCluster(EchoInt, -7);
  ExpectThroughCluster(EchoInt64, int64_t(1) << 50);
  ExpectThroughCluster(EchoU8, uint8_t(255));
  ExpectThroughCluster(EchoDouble, 2.5e-300);
  ExpectThroughCluster(EchoFloat, 1.5f);
  ExpectThroughCluster(EchoBool, true);
  ExpectThroughCluster(EchoChar, 'z');
  ExpectThroughCluster(EchoString, std::string(100000, 'q'));
  ExpectThroughCluster(EchoVector, std::vector<double>{1, 2, 3.5});
  ExpectThroughCluster(EchoMap, std::map<std::string, int>{{"one", 1}, {"two", 2}});
  ExpectThroughCluster(EchoUnorderedMap, std::unordered_map<int, std::string>{{1, "a"}});
  ExpectThroughCluster(EchoPair, std::pair<int, std::string>{1, "b"});
  ExpectThroughCluster(EchoTuple, Tuple{3, "c", 0.5});
  ExpectThroughCluster(EchoOptional, std::optional<int>(5));
  ExpectThroughCluster(EchoOptional, std::optional<int>());
  ExpectThroughCluster(EchoPoint, Point{-1, 1e10, "struct", {7, 8, 9}});
  ExpectThroughCluster(EchoNested, SampleNested());
  ExpectThroughCluster(EchoColor, Color::kRed);
}

TEST_F(ClusterSerializationTest, ArgumentsConvertToTheParameterType) {
  // An int literal where a double is expected, a C string where std::string is.
  EXPECT_EQ(*lumen::Get(lumen::Task(EchoDouble).Remote(2)), 2.0);
  EXPECT_EQ(*lumen::Get(lumen::Task(EchoString).Remote("literal")), "literal");
}

}  // namespace
