#!/usr/bin/env bash
# `make data`: the optional, larger data sets into data/ (CRUXEval and the AZR seeds ship there
# already). Copied from a sibling checkout's shared data (../shared/data, or $AZR_SHARED_DATA)
# when there is one; otherwise this says where to get each set. Nothing here is committed
# (data/mbppplus/ and data/math/ are in .gitignore).
#
#   data/mbppplus/MbppPlus.jsonl      MBPP+ (evalplus), Apache-2.0
#   data/math/<set>/test.jsonl        MATH500, AIME24, AIME25, AMC23, Minerva, OlympiadBench, GSM8K
#                                     (AZR's math evaluation sets), MIT for the collection
set -euo pipefail
cd "$(dirname "$0")/.."
source_dir=${AZR_SHARED_DATA:-../shared/data}
missing=0

copy_set() {  # name  file-that-proves-it-is-there  where-to-get-it
    local name=$1 probe=$2 where=$3
    if [[ -e "data/$name/$probe" ]]; then
        echo "data/$name: already there"
    elif [[ -e "$source_dir/$name/$probe" ]]; then
        rm -rf "data/$name.partial"
        cp -r "$source_dir/$name" "data/$name.partial"
        mv "data/$name.partial" "data/$name"
        echo "data/$name: copied from $source_dir/$name ($(du -sh "data/$name" | cut -f1))"
    else
        missing=1
        echo "data/$name: not found in $source_dir; get it from $where" >&2
    fi
}

copy_set mbppplus MbppPlus.jsonl \
    "evalplus (github.com/evalplus/evalplus, release MbppPlus.jsonl, Apache-2.0) as data/mbppplus/MbppPlus.jsonl"
copy_set math math500/test.jsonl \
    "AZR's math evaluation data (github.com/LeapLabTHU/Absolute-Zero-Reasoner, evaluation/math_eval/eval/data/<set>/test.jsonl, MIT) as data/math/<set>/test.jsonl"

if ((missing)); then
    echo "Optional sets missing: the trainer's math and MBPP+ evaluations need them; nothing else does." >&2
fi
