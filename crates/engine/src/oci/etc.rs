//! The files a container gets as /etc/hostname, /etc/hosts and
//! /etc/resolv.conf (rewritten with its address when it joins a network).

use std::path::Path;

use crate::config::{Dns, HostAddr, HostEntry};

/// The /etc/hosts of a container: localhost, the extra entries (with
/// `host-gateway` as `gateway`, left out without one), `links` (name,
/// aliases, address) and its own name (at `ip`, or 127.0.1.1 without a
/// network address).
pub fn hosts_file(
    hostname: &str,
    ip: Option<&str>,
    extra: &[HostEntry],
    gateway: Option<&str>,
    links: &[(String, Vec<String>, String)],
) -> String {
    let mut s = String::from(
        "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::0\tip6-localnet\n\
         ff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n",
    );
    for h in extra {
        let addr = match h.addr {
            HostAddr::Ip(a) => a.to_string(),
            HostAddr::HostGateway => match gateway {
                Some(g) => g.to_owned(),
                None => continue,
            },
        };
        s.push_str(&format!("{addr}\t{}\n", h.name));
    }
    for (name, aliases, addr) in links {
        let mut names = vec![name.clone()];
        names.extend(aliases.iter().cloned());
        s.push_str(&format!("{addr}\t{}\n", names.join(" ")));
    }
    s.push_str(&format!("{}\t{hostname}\n", ip.unwrap_or("127.0.1.1")));
    s
}

/// A resolv.conf: `nameservers` (the host's when empty, minus loopback
/// ones that cannot work from another network namespace), with the host's
/// or the given search domains and options.
pub fn resolv_conf(nameservers: &[String], dns: &Dns) -> String {
    let host = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
    let mut out = String::new();
    if nameservers.is_empty() {
        for l in host.lines().filter(|l| l.starts_with("nameserver")) {
            if !(l.contains(" 127.") || l.contains(" ::1")) {
                out.push_str(l);
                out.push('\n');
            }
        }
    } else {
        for n in nameservers {
            out.push_str(&format!("nameserver {n}\n"));
        }
    }
    let keep = |out: &mut String, key: &str, given: &[String]| {
        if given.is_empty() {
            for l in host.lines().filter(|l| l.starts_with(key)) {
                out.push_str(l);
                out.push('\n');
            }
        } else {
            out.push_str(&format!("{key} {}\n", given.join(" ")));
        }
    };
    keep(&mut out, "search", &dns.search);
    keep(&mut out, "options", &dns.options);
    out
}

/// The name servers `dns` asks for, as text.
pub fn servers(dns: &Dns) -> Vec<String> {
    dns.servers.iter().map(ToString::to_string).collect()
}

/// Writes a new container's hostname, hosts and resolv.conf into `dir`.
pub fn write_etc_files(
    dir: &Path,
    hostname: &str,
    extra_hosts: &[HostEntry],
    dns: &Dns,
) -> std::io::Result<()> {
    std::fs::write(dir.join("hostname"), format!("{hostname}\n"))?;
    std::fs::write(
        dir.join("hosts"),
        hosts_file(hostname, None, extra_hosts, None, &[]),
    )?;
    std::fs::write(dir.join("resolv.conf"), resolv_conf(&servers(dns), dns))
}
