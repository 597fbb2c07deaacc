// The HTTP server on loopback: every endpoint, streaming, concurrent clients, bad
// requests (each a 4xx with an OpenAI-style error body, the server staying up) and a
// client that disconnects mid-stream.
#include <httplib.h>

#include <thread>

#include "eval/stop_text.h"
#include "quant/quantize_model.h"
#include "sched/scheduler.h"
#include "server/server.h"
#include "test_util.h"

namespace pmpd {
namespace {

class ServerTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new test::TempDir();
    model_ = test::quantized_tiny(*dir_, 2, 4).release();
    server::ServerConfig cfg;
    cfg.model_id = "tiny";
    cfg.high_bits = 4, cfg.low_bits = 2;
    cfg.schedule = "4:3,3:3,2";
    server_ = new server::Server(*model_, cfg);
    port_ = server_->bind("127.0.0.1", 0);
    thread_ = new std::thread([] { server_->listen(); });
    httplib::Client c("127.0.0.1", port_);
    for (int i = 0; i < 100 && !c.Get("/health"); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  static void TearDownTestSuite() {
    server_->stop();
    thread_->join();
    delete thread_;
    delete server_;
    delete model_;
    delete dir_;
  }
  static httplib::Client client() {
    httplib::Client c("127.0.0.1", port_);
    c.set_read_timeout(60, 0);
    return c;
  }
  static Json post(const std::string& path, const Json& body, int want_status = 200) {
    auto c = client();
    auto res = c.Post(path, body.dump(), "application/json");
    EXPECT_TRUE(res) << path;
    if (!res) return {};
    EXPECT_EQ(res->status, want_status) << res->body;
    return Json::parse(res->body);
  }
  // What generate() gives for the same prompt and schedule, greedily.
  static std::pair<std::string, std::vector<int>> direct(const std::string& prompt, const std::string& schedule, int n,
                                                         const std::vector<std::string>& stop = {}) {
    Tokenizer tok(*model_->tokenizer);
    Transformer tf(*model_);
    auto sched = make_scheduler(schedule, n, 0, 4);
    GenerateOptions opt;
    opt.max_new_tokens = n;
    opt.eos = tok.eos();
    opt.scheduler = sched.get();
    eval::StopText text(tok, stop);
    auto r = generate(tf, tok.encode(prompt, tok.add_bos_default()), opt, [&](int id) { return text.push(id); });
    return {text.text(), r.token_bits};
  }
  static void expect_error(const std::string& path, const std::string& body, int status, const std::string& fragment) {
    auto c = client();
    auto res = c.Post(path, body, "application/json");
    ASSERT_TRUE(res);
    EXPECT_EQ(res->status, status) << body;
    Json j = Json::parse(res->body, nullptr, false);
    ASSERT_TRUE(j.is_object() && j.contains("error")) << res->body;
    EXPECT_NE(j["error"]["message"].get<std::string>().find(fragment), std::string::npos) << res->body;
    EXPECT_TRUE(j["error"].contains("type"));
  }
  static test::TempDir* dir_;
  static Model* model_;
  static server::Server* server_;
  static std::thread* thread_;
  static int port_;
};
test::TempDir* ServerTest::dir_ = nullptr;
Model* ServerTest::model_ = nullptr;
server::Server* ServerTest::server_ = nullptr;
std::thread* ServerTest::thread_ = nullptr;
int ServerTest::port_ = 0;

const char* kPrompt = "German: Zwei Hunde spielen im Schnee.\nEnglish:\n";

TEST_F(ServerTest, InfoEndpoints) {
  auto c = client();
  auto h = c.Get("/health");
  ASSERT_TRUE(h);
  EXPECT_EQ(h->status, 200);
  auto m = c.Get("/v1/models");
  ASSERT_TRUE(m);
  Json j = Json::parse(m->body);
  EXPECT_EQ(j["data"][0]["id"], "tiny");
  EXPECT_EQ(j["data"][0]["pmpd"]["bits_max"], 4);
  auto page = c.Get("/");
  ASSERT_TRUE(page);
  EXPECT_NE(page->body.find("/v1/completions"), std::string::npos);
  EXPECT_NE(page->get_header_value("Content-Type").find("text/html"), std::string::npos);
  auto missing = c.Get("/v2/nothing");
  ASSERT_TRUE(missing);
  EXPECT_EQ(missing->status, 404);
  EXPECT_TRUE(Json::parse(missing->body).contains("error"));
}

TEST_F(ServerTest, CompletionEqualsDirectGenerationInEveryMode) {
  for (auto [mode, schedule] : {std::pair{"pmpd", "4:3,3:3,2"}, {"high", "fixed:4"}, {"low", "fixed:2"}}) {
    Json j = post("/v1/completions", {{"prompt", kPrompt}, {"max_tokens", 12}, {"temperature", 0}, {"pmpd", {{"mode", mode}}}});
    auto [text, bits] = direct(kPrompt, schedule, 12);
    EXPECT_EQ(j["object"], "text_completion");
    EXPECT_EQ(j["choices"][0]["text"], text) << mode;
    EXPECT_EQ(j["pmpd"]["token_bits"].get<std::vector<int>>(), bits) << mode;
    EXPECT_EQ(j["usage"]["completion_tokens"].get<size_t>(), bits.size());
    double avg = 0;
    for (int b : bits) avg += b;
    EXPECT_NEAR(j["pmpd"]["average_bits"].get<double>(), avg / double(bits.size()), 1e-9);
  }
  // A request's own schedule and stop strings.
  Json j = post("/v1/completions", {{"prompt", kPrompt}, {"max_tokens", 16}, {"temperature", 0}, {"stop", "snow"},
                                    {"pmpd", {{"schedule", "3:2,2"}}}});
  auto [text, bits] = direct(kPrompt, "3:2,2", 16, {"snow"});
  EXPECT_EQ(j["choices"][0]["text"], text);
}

TEST_F(ServerTest, StreamingDeltasAddUpToTheAnswer) {
  Json full = post("/v1/completions", {{"prompt", kPrompt}, {"max_tokens", 14}, {"temperature", 0}});
  auto c = client();
  std::string body;
  auto res = c.Post("/v1/completions", Json{{"prompt", kPrompt}, {"max_tokens", 14}, {"temperature", 0}, {"stream", true}}.dump(),
                    "application/json");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200);
  EXPECT_NE(res->get_header_value("Content-Type").find("text/event-stream"), std::string::npos);
  std::string text;
  std::vector<int> bits;
  bool done = false, final_seen = false;
  for (size_t pos = 0; pos < res->body.size();) {
    size_t end = res->body.find("\n\n", pos);
    ASSERT_NE(end, std::string::npos);
    std::string ev = res->body.substr(pos, end - pos);
    pos = end + 2;
    ASSERT_EQ(ev.rfind("data: ", 0), 0u) << ev;
    if (ev == "data: [DONE]") {
      done = true;
      continue;
    }
    Json j = Json::parse(ev.substr(6));
    if (j.contains("usage")) {
      final_seen = true;
      EXPECT_EQ(j["choices"][0]["finish_reason"], full["choices"][0]["finish_reason"]);
      continue;
    }
    text += j["choices"][0]["text"].get<std::string>();
    bits.push_back(j["pmpd"]["bits"].get<int>());
  }
  EXPECT_TRUE(done && final_seen);
  EXPECT_EQ(text, full["choices"][0]["text"]);
  EXPECT_EQ(bits, full["pmpd"]["token_bits"].get<std::vector<int>>());
}

TEST_F(ServerTest, ChatCompletion) {
  Json j = post("/v1/chat/completions", {{"messages", {{{"role", "user"}, {"content", "German: Ein Hund.\nEnglish:"}}}},
                                         {"max_tokens", 8}, {"temperature", 0}});
  EXPECT_EQ(j["object"], "chat.completion");
  EXPECT_EQ(j["choices"][0]["message"]["role"], "assistant");
  EXPECT_TRUE(j["choices"][0]["message"]["content"].is_string());
  auto [text, bits] = direct("German: Ein Hund.\nEnglish:\n", "4:3,3:3,2", 8);
  EXPECT_EQ(j["choices"][0]["message"]["content"], text);
}

TEST_F(ServerTest, ConcurrentClientsEachGetTheirOwnAnswer) {
  const std::vector<std::string> prompts = {"German: Ein Hund.\nEnglish:\n", "German: Zwei Katzen.\nEnglish:\n",
                                            "German: Ein Mann fährt Fahrrad.\nEnglish:\n", "A dog", "The man",
                                            "German: Eine Frau liest.\nEnglish:\n", "Two children", "German: Ein Ball.\nEnglish:\n"};
  std::vector<std::string> want;
  for (auto& p : prompts) want.push_back(direct(p, "4:3,3:3,2", 10).first);
  std::vector<std::string> got(prompts.size());
  std::vector<std::thread> threads;
  for (size_t i = 0; i < prompts.size(); ++i)
    threads.emplace_back([&, i] {
      auto c = client();
      auto res = c.Post("/v1/completions", Json{{"prompt", prompts[i]}, {"max_tokens", 10}, {"temperature", 0},
                                                {"stream", i % 2 == 1}}.dump(), "application/json");
      if (!res || res->status != 200) return;
      if (i % 2 == 0) {
        got[i] = Json::parse(res->body)["choices"][0]["text"];
        return;
      }
      for (size_t pos = 0; (pos = res->body.find("data: {", pos)) != std::string::npos; ++pos) {
        Json j = Json::parse(res->body.substr(pos + 6, res->body.find("\n\n", pos) - pos - 6));
        if (!j.contains("usage")) got[i] += j["choices"][0]["text"].get<std::string>();
      }
    });
  for (auto& t : threads) t.join();
  for (size_t i = 0; i < prompts.size(); ++i) EXPECT_EQ(got[i], want[i]) << prompts[i];
}

TEST_F(ServerTest, BadRequestsAreFourHundredsAndTheServerStaysUp) {
  expect_error("/v1/completions", "{not json", 400, "not valid JSON");
  expect_error("/v1/completions", R"([1,2])", 400, "JSON object");
  expect_error("/v1/completions", R"({"prompt": "a", "colour": "red"})", 400, "unknown field");
  expect_error("/v1/completions", R"({"prompt": "a", "pmpd": {"mood": 1}})", 400, "unknown field");
  expect_error("/v1/completions", R"({})", 400, "required");
  expect_error("/v1/completions", R"({"prompt": []})", 400, "prompt");
  expect_error("/v1/completions", R"({"prompt": 42})", 400, "prompt");
  expect_error("/v1/completions", R"({"prompt": "a", "max_tokens": -5})", 400, "max_tokens");
  expect_error("/v1/completions", R"({"prompt": "a", "max_tokens": 100000000})", 400, "max_tokens");
  expect_error("/v1/completions", R"({"prompt": "a", "max_tokens": "ten"})", 400, "integer");
  expect_error("/v1/completions", R"({"prompt": "a", "temperature": -1})", 400, "temperature");
  expect_error("/v1/completions", R"({"prompt": "a", "pmpd": {"mode": "turbo"}})", 400, "unknown mode");
  expect_error("/v1/completions", R"({"prompt": "a", "pmpd": {"scheduler": "learned"}})", 400, "no learned scheduler");
  expect_error("/v1/completions", R"({"prompt": "a", "pmpd": {"schedule": "2:3,4"}})", 400, "non-increasing");
  expect_error("/v1/completions", R"({"prompt": "a", "pmpd": {"schedule": "/etc/x.json"}})", 400, "schedule files");
  expect_error("/v1/completions", R"({"prompt": "a", "pmpd": {"schedule": "fixed:7"}})", 400, "holds 2 to 4");
  expect_error("/v1/completions", R"({"prompt": "a", "n": 3})", 400, "'n'");
  expect_error("/v1/completions", R"({"prompt": "a", "model": "gpt-4"})", 404, "does not exist");
  expect_error("/v1/completions", R"({"prompt": [1, 99999]})", 400, "token ids");
  expect_error("/v1/chat/completions", R"({"messages": []})", 400, "messages");
  expect_error("/v1/chat/completions", R"({"messages": [{"role": "wizard", "content": "hi"}]})", 400, "role");
  expect_error("/v1/chat/completions", R"({"prompt": "a", "messages": [{"role": "user", "content": "hi"}]})", 400, "unknown field");
  // A prompt longer than the context (512 tokens), and a body over the size limit.
  std::string words;
  for (int i = 0; i < 700; ++i) words += "Hund ";
  expect_error("/v1/completions", Json{{"prompt", words}}.dump(), 400, "context");
  expect_error("/v1/completions", Json{{"prompt", std::string(2 << 20, 'a')}}.dump(), 413, "too large");
  auto c = client();
  auto h = c.Get("/health");
  ASSERT_TRUE(h);
  EXPECT_EQ(h->status, 200);
  Json ok = post("/v1/completions", {{"prompt", "A dog"}, {"max_tokens", 3}});
  EXPECT_EQ(ok["usage"]["completion_tokens"], 3);
}

TEST_F(ServerTest, ClientThatLeavesStopsItsGenerationAndMetricsCount) {
  auto metric = [](const std::string& name) {
    auto res = client().Get("/metrics");
    EXPECT_TRUE(res);
    size_t p = res->body.find("\n" + name + " ");
    EXPECT_NE(p, std::string::npos) << name;
    return std::stod(res->body.substr(p + name.size() + 2));
  };
  const double before = metric("pmpd_client_disconnects_total"), tokens_before = metric("pmpd_generated_tokens_total");
  {
    auto c = client();
    int chunks = 0;
    httplib::Request req;
    req.method = "POST";
    req.path = "/v1/completions";
    req.set_header("Content-Type", "application/json");
    req.body = Json{{"prompt", "A"}, {"max_tokens", 400}, {"temperature", 1.0}, {"seed", 3}, {"stream", true}}.dump();
    req.content_receiver = [&](const char*, size_t, uint64_t, uint64_t) { return ++chunks < 2; };  // leave after one
    httplib::Response res;
    httplib::Error err;
    c.send(req, res, err);
  }
  for (int i = 0; i < 100 && metric("pmpd_client_disconnects_total") == before; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  EXPECT_EQ(metric("pmpd_client_disconnects_total"), before + 1);
  EXPECT_GT(metric("pmpd_requests_total"), 0);
  EXPECT_GT(metric("pmpd_average_bits"), 1.9);
  EXPECT_EQ(metric("pmpd_prefill_cache_bytes"), 0);  // the CPU backend has none
  EXPECT_LT(metric("pmpd_generated_tokens_total") - tokens_before, 400);  // the stream stopped early
}

}  // namespace
}  // namespace pmpd
