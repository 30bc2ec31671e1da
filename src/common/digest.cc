#include "common/digest.h"

#include <fcntl.h>
#include <openssl/evp.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <vector>

#include "common/ids.h"
#include "common/status.h"

namespace lumen {

struct Sha256::State {
  EVP_MD_CTX* ctx = nullptr;
};

Sha256::Sha256() : state_(std::make_unique<State>()) {
  state_->ctx = EVP_MD_CTX_new();
  LUMEN_CHECK(state_->ctx != nullptr && EVP_DigestInit_ex(state_->ctx, EVP_sha256(), nullptr) == 1);
}

Sha256::~Sha256() { EVP_MD_CTX_free(state_->ctx); }

void Sha256::Update(std::string_view bytes) {
  LUMEN_CHECK(EVP_DigestUpdate(state_->ctx, bytes.data(), bytes.size()) == 1);
}

std::string Sha256::HexDigest() {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  LUMEN_CHECK(EVP_DigestFinal_ex(state_->ctx, digest, &length) == 1);
  return HexEncode(std::string_view(reinterpret_cast<const char*>(digest), length));
}

absl::StatusOr<FileDigest> DigestFile(const std::string& path) {
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    int err = errno;
    std::string why = "cannot read '" + path + "': " + strerror(err);
    if (err == ENOENT) return absl::NotFoundError(why);
    if (err == EACCES) return absl::PermissionDeniedError(why);
    return absl::InternalError(why);
  }
  Sha256 sha;
  FileDigest out;
  std::vector<char> buf(1 << 20);
  while (true) {
    ssize_t n = read(fd, buf.data(), buf.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      std::string why = "cannot read '" + path + "': " + strerror(errno);
      close(fd);
      return absl::InternalError(why);
    }
    if (n == 0) break;
    sha.Update(std::string_view(buf.data(), size_t(n)));
    out.size += uint64_t(n);
  }
  close(fd);
  out.hex = sha.HexDigest();
  return out;
}

bool IsHexDigest(std::string_view text) {
  if (text.size() != 64) return false;
  for (char c : text) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

}  // namespace lumen
