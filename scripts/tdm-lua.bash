# bash completion for tdm-lua: commands, each command's options (read from
# its own --help, so they never disagree) and actor names from the data
# root (--data-root on the line, else $TDM_DATA_ROOT, else ./data).
# Installed by `make install` as share/bash-completion/completions/tdm-lua.

_tdm_lua_actors() {
  local root=${TDM_DATA_ROOT:-data} i
  for ((i = 1; i < ${#COMP_WORDS[@]}; i++)); do
    case ${COMP_WORDS[i]} in
      --data-root) root=${COMP_WORDS[i + 1]} ;;
      --data-root=*) root=${COMP_WORDS[i]#--data-root=} ;;
    esac
  done
  [ -d "$root/actors" ] || return
  local d
  for d in "$root"/actors/[0-9]*; do
    [ -d "$d" ] && printf '%s\n' "${d##*/}"
  done
}

_tdm_lua() {
  local cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD - 1]}
  local exe=${COMP_WORDS[0]} cmd="" i
  for ((i = 1; i < COMP_CWORD; i++)); do
    case ${COMP_WORDS[i]} in
      --data-root|--bucket|--prefix|--profile|--region|--endpoint-url|--log-file) ((i++)) ;;
      -*) ;;
      *) cmd=${COMP_WORDS[i]}; break ;;
    esac
  done
  case $prev in
    --actor) COMPREPLY=($(compgen -W "$(_tdm_lua_actors)" -- "$cur")); return ;;
    --data-root|--log-file) COMPREPLY=($(compgen -f -- "$cur")); return ;;
    --bucket|--prefix|--region|--endpoint-url|--jobs|--shard|--listen|--threads)
      return ;;
    --profile)
      COMPREPLY=($(compgen -W "$(sed -n 's/^\[\(profile \)\{0,1\}\([^]]*\)\]$/\2/p' \
        "${AWS_CONFIG_FILE:-$HOME/.aws/config}" 2>/dev/null)" -- "$cur")); return ;;
  esac
  if [ -z "$cmd" ]; then
    if [[ $cur == -* ]]; then
      COMPREPLY=($(compgen -W "$("$exe" --help 2>/dev/null | grep -oE -- '(^|  |, )-{1,2}[a-zA-Z][a-zA-Z-]*' | grep -oE -- '-.*')" -- "$cur"))
    else
      COMPREPLY=($(compgen -W "$("$exe" --help 2>/dev/null | sed -n '/^commands:/,/^$/s/^  \([a-z][a-z0-9-]*\) .*/\1/p')" -- "$cur"))
    fi
    return
  fi
  if [[ $cur == -* ]]; then
    COMPREPLY=($(compgen -W "$("$exe" "$cmd" --help 2>/dev/null | sed -n '/^options:/,/^$/p' | grep -oE -- '(^|  |, )-{1,2}[a-zA-Z][a-zA-Z-]*' | grep -oE -- '-.*')" -- "$cur"))
    return
  fi
  case $cmd in
    pull|push) COMPREPLY=($(compgen -W "$(_tdm_lua_actors)" -- "$cur")) ;;
    help) COMPREPLY=($(compgen -W "$("$exe" --help 2>/dev/null | sed -n '/^commands:/,/^$/s/^  \([a-z][a-z0-9-]*\) .*/\1/p')" -- "$cur")) ;;
    *) COMPREPLY=($(compgen -f -- "$cur")) ;;
  esac
}
complete -F _tdm_lua tdm-lua
