# tests + one bench of vicuna-7b at 2..4 bits (ops, step profile, e2e)
r=$(mktemp -d); tar -C $r -xJf .gpu/bundle.tar.xz
export LD_LIBRARY_PATH=$r/lib:$(dirname $(find / -name libcublas.so.13 -not -path '*/proc/*' 2>/dev/null | head -1))
export PMPD_SOURCE_DIR=$PWD
$r/bin/pmpd_tests --gtest_filter='*Cuda*' > $OUT/tests.txt 2>&1; grep -E "PASSED|FAILED" $OUT/tests.txt
$r/bin/pmpd bench --backend cuda --shape ${SHAPE:-vicuna-7b} --bits ${BITS:-2:4} --prompt-tokens 128 $EXTRA > $OUT/bench.md 2>&1
grep -E "^\| [0-9]|16 \(|bit \||PMPD|alternate|switch|stage|step|proj|attention" $OUT/bench.md
