//! `modprobe.d(5)` directives that keep a module out (`install X /bin/false`, `blacklist X`),
//! `/proc/modules`, `modules.dep`/`modules.builtin`, and the EFI `SecureBoot` variable.

/// A directive that concerns one module.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Directive {
    /// `blacklist X`: only alias-based autoloading is stopped; `modprobe X` still loads it.
    Blacklist { module: String, line: usize },
    /// `install X CMD…`: `modprobe X` runs CMD instead of loading the module.
    Install {
        module: String,
        command: String,
        line: usize,
    },
}

impl Directive {
    pub fn module(&self) -> &str {
        match self {
            Directive::Blacklist { module, .. } | Directive::Install { module, .. } => module,
        }
    }
}

/// kmod treats `-` and `_` in module names alike; `/proc/modules` uses `_`.
pub fn normalise_module(name: &str) -> String {
    name.replace('-', "_")
}

/// Parses one modprobe configuration file (`\` continues a line, `#` starts a comment line).
pub fn parse_modprobe_conf(text: &str) -> Vec<Directive> {
    let mut directives = Vec::new();
    let mut pending = String::new();
    let mut start = 0;
    for (index, raw) in text.lines().enumerate() {
        let raw = raw.trim_end_matches('\r');
        if pending.is_empty() {
            start = index + 1;
        }
        if let Some(body) = raw.strip_suffix('\\') {
            pending.push_str(body);
            pending.push(' ');
            continue;
        }
        pending.push_str(raw);
        let line = std::mem::take(&mut pending);
        if let Some(d) = parse_line(&line, start) {
            directives.push(d);
        }
    }
    if !pending.is_empty()
        && let Some(d) = parse_line(&pending, start)
    {
        directives.push(d);
    }
    directives
}

fn parse_line(line: &str, number: usize) -> Option<Directive> {
    let trimmed = line.trim();
    if trimmed.starts_with('#') {
        return None;
    }
    let mut words = trimmed.split_whitespace();
    let keyword = words.next()?;
    let module = normalise_module(words.next()?);
    match keyword {
        "blacklist" => Some(Directive::Blacklist {
            module,
            line: number,
        }),
        "install" => {
            let command: Vec<&str> = words.collect();
            if command.is_empty() {
                return None;
            }
            Some(Directive::Install {
                module,
                command: command.join(" "),
                line: number,
            })
        }
        _ => None,
    }
}

/// True when an `install` command stops the module from loading: `/bin/false`, `/bin/true`
/// and any command that does not itself call modprobe or insmod.
pub fn install_blocks(command: &str) -> bool {
    let first = command.split_whitespace().next().unwrap_or("");
    let program = first.rsplit('/').next().unwrap_or(first);
    if matches!(program, "false" | "true") {
        return true;
    }
    !(command.contains("modprobe") || command.contains("insmod"))
}

/// Names of the loaded modules, from `/proc/modules`.
pub fn parse_proc_modules(text: &str) -> Vec<String> {
    text.lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|name| {
            !name.is_empty()
                && name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        })
        .map(normalise_module)
        .collect()
}

/// Module names a `modules.dep` or `modules.builtin` file lists (`kernel/fs/udf/udf.ko.xz:`).
pub fn parse_module_index(text: &str) -> Vec<String> {
    text.lines()
        .filter_map(|line| {
            let path = line.split(':').next()?.trim();
            let file = path.rsplit('/').next()?;
            let name = file.split(".ko").next()?;
            (!name.is_empty() && file.contains(".ko")).then(|| normalise_module(name))
        })
        .collect()
}

/// The Secure Boot state from an efivarfs `SecureBoot-…` file (4 bytes of attributes, then the
/// value) or from the old sysfs `…/data` file (the value alone).
pub fn parse_efi_bool(bytes: &[u8], with_attributes: bool) -> Option<bool> {
    let value = if with_attributes {
        bytes.get(4..)?
    } else {
        bytes
    };
    match value.first() {
        Some(0) => Some(false),
        Some(1) => Some(true),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_install_and_blacklist_lines() {
        let text = "# CIS\r\ninstall cramfs /bin/false\nblacklist cramfs\ninstall usb-storage \\\n  /bin/true\n\
                    install sctp /sbin/modprobe --ignore-install sctp $CMDLINE_OPTS\n  # blacklist hfs\n\
                    options udf foo=1\nblacklist\ninstall tipc\nalias net-pf-30 off\nblacklist dccp";
        let d = parse_modprobe_conf(text);
        assert_eq!(
            d,
            [
                Directive::Install {
                    module: "cramfs".into(),
                    command: "/bin/false".into(),
                    line: 2
                },
                Directive::Blacklist {
                    module: "cramfs".into(),
                    line: 3
                },
                Directive::Install {
                    module: "usb_storage".into(),
                    command: "/bin/true".into(),
                    line: 4
                },
                Directive::Install {
                    module: "sctp".into(),
                    command: "/sbin/modprobe --ignore-install sctp $CMDLINE_OPTS".into(),
                    line: 6
                },
                Directive::Blacklist {
                    module: "dccp".into(),
                    line: 12
                },
            ]
        );
        assert!(install_blocks("/bin/false"));
        assert!(install_blocks("/usr/bin/true"));
        assert!(install_blocks("/bin/echo disabled by policy"));
        assert!(!install_blocks("/sbin/modprobe --ignore-install sctp"));
        assert!(parse_modprobe_conf("install x \\").is_empty());
    }

    #[test]
    fn reads_loaded_and_available_modules() {
        let loaded = parse_proc_modules(
            "usb_storage 81920 0 - Live 0x0000000000000000\nsctp 434176 2 - Live 0x0 (E)\n\n\u{fffd}junk\n",
        );
        assert_eq!(loaded, ["usb_storage", "sctp"]);
        let index = parse_module_index(
            "kernel/fs/udf/udf.ko.xz: kernel/lib/crc-itu-t.ko.xz\nkernel/drivers/usb/storage/usb-storage.ko:\nnonsense\n",
        );
        assert_eq!(index, ["udf", "usb_storage"]);
    }

    #[test]
    fn reads_efi_booleans() {
        assert_eq!(parse_efi_bool(&[6, 0, 0, 0, 1], true), Some(true));
        assert_eq!(parse_efi_bool(&[6, 0, 0, 0, 0], true), Some(false));
        assert_eq!(parse_efi_bool(&[6, 0, 0], true), None);
        assert_eq!(parse_efi_bool(&[1], false), Some(true));
        assert_eq!(parse_efi_bool(&[7, 0, 0, 0, 9], true), None);
    }
}
