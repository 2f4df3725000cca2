# Read by llama.cpp's CMake build inside llama-cpp-sys-2 (`CMAKE_PROJECT_INCLUDE`, set in
# .cargo/config.toml; the sys crate forwards every CMAKE_* variable to CMake).
#
# llama-cpp-2 always builds llama.cpp's `common` library (chat templates, argument parsing,
# model downloads over HTTPS) for a few helpers wst never calls on a hot path, yet it was over
# half of llama.cpp's compile time (common 105 s + cpp-httplib 27 s of 242 s on 2 cores).
# Here it builds as one unoptimised unity build (29 s) and without OpenSSL; ggml and libllama,
# where the Student's time goes, are compiled exactly as before.

# Included after every project() call: act once, at the first (llama.cpp's own). Deferred
# calls need CMake 3.19; an older CMake builds llama.cpp as it comes.
if(DEFINED WST_LEAN_COMMON OR CMAKE_VERSION VERSION_LESS 3.19)
    return()
endif()
set(WST_LEAN_COMMON ON)

# Before llama.cpp declares the option, so its default (ON) does not apply: wst downloads
# models itself and never through llama.cpp.
set(LLAMA_OPENSSL OFF CACHE BOOL "wst: llama.cpp downloads nothing" FORCE)

function(wst_lean_common)
    if(TARGET llama-common)
        set_target_properties(llama-common PROPERTIES UNITY_BUILD ON UNITY_BUILD_BATCH_SIZE 16)
        if(NOT MSVC)
            target_compile_options(llama-common PRIVATE -O0)
        endif()
    endif()
    if(TARGET cpp-httplib AND NOT MSVC)
        target_compile_options(cpp-httplib PRIVATE -O0)
    endif()
endfunction()
# Run once every target of the top-level directory exists.
cmake_language(DEFER DIRECTORY ${CMAKE_SOURCE_DIR} CALL wst_lean_common)
