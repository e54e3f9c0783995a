// Prints the queue counts and the pending errors of every relation in the
// config, through the C API of libexalate_zabbix, with RAII handles.
//
//   c++ -std=c++17 exalate_queues.cpp $(pkg-config --cflags --libs exalate_zabbix) -o exalate_queues
//   ./exalate_queues [CONFIG]
#include <exalate_zabbix.h>

#include <array>
#include <cstdint>
#include <iostream>
#include <memory>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace exalate {

// The client and the strings it returns, freed by the library's own functions.
using Client = std::unique_ptr<exalate_client, decltype(&exalate_client_free)>;
using String = std::unique_ptr<char, decltype(&exalate_string_free)>;

class Error : public std::runtime_error {
  public:
    Error(exalate_result rc)
        : std::runtime_error(std::string(exalate_result_name(rc)) + ": " + exalate_last_error()), code(rc) {}
    exalate_result code;
};

void check(exalate_result rc) {
    if (rc != EXALATE_OK)
        throw Error(rc);
}

Client open(const char *config) {
    exalate_client *raw = nullptr;
    check(exalate_client_open(config, &raw));
    return Client(raw, &exalate_client_free);
}

std::uint64_t count(const Client &c, const std::string &node, const std::string &relation, const char *queue) {
    std::uint64_t n = 0;
    check(exalate_queue_count(c.get(), node.c_str(), relation.c_str(), queue, &n));
    return n;
}

std::string get(const Client &c, const std::string &node, const std::string &relation, const char *queue) {
    char *raw = nullptr;
    check(exalate_queue_get(c.get(), node.c_str(), relation.c_str(), queue, &raw));
    return String(raw, &exalate_string_free).get();
}

std::vector<std::pair<std::string, std::string>> relations(const Client &c) {
    std::vector<std::pair<std::string, std::string>> all;
    check(exalate_for_each_relation(
        c.get(),
        [](void *out, const char *node, const char *relation) {
            static_cast<decltype(all) *>(out)->emplace_back(node, relation);
        },
        &all));
    return all;
}

}  // namespace exalate

int main(int argc, char **argv) {
    constexpr std::array<const char *, 6> queues{"syncrequests",  "blobrequests",   "syncresponses",
                                                 "blobresponses", "errorresponses", "bloberrorresponses"};
    try {
        auto client = exalate::open(argc > 1 ? argv[1] : nullptr);
        std::cout << "libexalate_zabbix " << exalate_version() << "\n";
        for (const auto &[node, relation] : exalate::relations(client)) {
            std::cout << node << " / " << relation << "\n";
            for (const char *queue : queues) {
                try {
                    std::cout << "  " << queue << " " << exalate::count(client, node, relation, queue) << "\n";
                } catch (const exalate::Error &e) {
                    std::cout << "  " << queue << " " << e.what() << "\n";
                }
            }
            try {
                std::cout << "  pending errors: " << exalate::get(client, node, relation, "errorresponses") << "\n";
            } catch (const exalate::Error &) {
            }
        }
    } catch (const exalate::Error &e) {
        std::cerr << e.what() << "\n";
        return 1;
    }
    return 0;
}
