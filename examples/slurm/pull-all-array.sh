#!/bin/bash
# tdm pull-all as a Slurm job array: each array task pulls its own shard
# of the actors into the shared data root. tdm takes the shard from
# SLURM_ARRAY_TASK_ID, SLURM_ARRAY_TASK_MIN/_STEP and SLURM_ARRAY_TASK_COUNT
# (no --shard needed) and prints which one it took.
#
#   sbatch examples/slurm/pull-all-array.sh
#
#SBATCH --job-name=tdm-pull-all
#SBATCH --array=0-7
#SBATCH --cpus-per-task=4
#SBATCH --time=02:00:00
#SBATCH --output=tdm-pull-all-%A_%a.log
set -euo pipefail
export TDM_DATA_ROOT=${TDM_DATA_ROOT:-/shared/tdm/data}   # on a file system with flock
# export AWS_PROFILE=tdm     # a ~/.aws/config profile, if not from the environment
exec tdm-lua pull-all --quiet --jobs 16
