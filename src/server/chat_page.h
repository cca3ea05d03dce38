// The chat page served at `/`: one static HTML file (src/server/chat_page.html, no external
// resources), compiled into the binary by CMake.
#pragma once

#include <string_view>

namespace aero::server {

std::string_view chat_page_html();

}  // namespace aero::server
