# Cross-compiling pmpd for 64-bit ARM Linux on an x86 Debian host (Debian's
# g++-aarch64-linux-gnu and the :arm64 multiarch -dev packages; .ci/arm uses it).
# On an ARM machine itself no toolchain file is needed.
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)
set(CMAKE_C_COMPILER aarch64-linux-gnu-gcc)
set(CMAKE_CXX_COMPILER aarch64-linux-gnu-g++)
set(CMAKE_LIBRARY_ARCHITECTURE aarch64-linux-gnu)
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
# Tests run under qemu-user (binfmt or an explicit emulator) when there is one.
find_program(PMPD_QEMU_AARCH64 qemu-aarch64)
if(PMPD_QEMU_AARCH64)
  set(CMAKE_CROSSCOMPILING_EMULATOR ${PMPD_QEMU_AARCH64})
endif()
# pkg-config (cpp-httplib) must read the arm64 .pc files, not the host's.
set(ENV{PKG_CONFIG_LIBDIR} /usr/lib/aarch64-linux-gnu/pkgconfig:/usr/share/pkgconfig)
