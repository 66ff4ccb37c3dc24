# Build types: Release (-O2), Debug (-Og) and Asan (AddressSanitizer + UndefinedBehaviorSanitizer).
# Symmetric transfer between coroutines is a tail call only when GCC 12 emits sibling calls: -O2 does,
# -Og and -O1 need -foptimize-sibling-calls, and ASan's stack redzones forbid them unless asan-stack is
# off. Without them a loop awaiting tasks that complete at once grows the stack until it overflows
# (tests/io/task_test.cpp). Coroutine frames live on the heap, so ASan still checks their locals.
# -g1 (line tables): sanitizer reports keep file and line, and the build takes about a fifth less time.
set(CMAKE_CXX_FLAGS_RELEASE "-O2 -DNDEBUG" CACHE STRING "" FORCE)
set(CMAKE_CXX_FLAGS_DEBUG "-Og -g -foptimize-sibling-calls" CACHE STRING "" FORCE)
set(CMAKE_CXX_FLAGS_ASAN
    "-O1 -g1 -fno-omit-frame-pointer -foptimize-sibling-calls -fsanitize=address,undefined -fno-sanitize-recover=undefined --param asan-stack=0"
    CACHE STRING "" FORCE)
set(CMAKE_EXE_LINKER_FLAGS_ASAN "-fsanitize=address,undefined" CACHE STRING "" FORCE)
set(CMAKE_SHARED_LINKER_FLAGS_ASAN "-fsanitize=address,undefined" CACHE STRING "" FORCE)
mark_as_advanced(CMAKE_CXX_FLAGS_ASAN CMAKE_EXE_LINKER_FLAGS_ASAN CMAKE_SHARED_LINKER_FLAGS_ASAN)
