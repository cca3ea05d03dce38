# Writes a C++ source defining `std::string_view NAME()` that returns the bytes of IN (run at
# build time: cmake -DIN=file -DOUT=file.cpp -DNAME=aero::server::chat_page_html -P EmbedText.cmake).
file(READ "${IN}" hex HEX)
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "'\\\\x\\1'," bytes "${hex}")
string(REGEX REPLACE "(('\\\\x[0-9a-f][0-9a-f]',){16})" "\\1\n" bytes "${bytes}")
string(REGEX MATCH "^(.*)::([^:]+)$" _ "${NAME}")
set(namespace "${CMAKE_MATCH_1}")
set(function "${CMAKE_MATCH_2}")
file(WRITE "${OUT}.tmp" "// Generated from ${IN} by cmake/EmbedText.cmake; do not edit.\n#include <string_view>\n\nnamespace ${namespace} {\nnamespace {\nconstexpr char kBytes[] = {\n${bytes}};\n}  // namespace\nstd::string_view ${function}() { return {kBytes, sizeof kBytes}; }\n}  // namespace ${namespace}\n")
file(RENAME "${OUT}.tmp" "${OUT}")
