use yew::prelude::*;

#[derive(Properties, PartialEq)]
pub struct InstallHintProps {
    pub site: AttrValue,
    /// Where this server is reachable (`http://host:port`), for the snippet.
    pub origin: AttrValue,
}

/// The empty state: nothing recorded yet, so say how to start recording.
#[component]
pub fn InstallHint(props: &InstallHintProps) -> Html {
    let site = if props.site == crate::state::DEFAULT_SITE {
        "example.com"
    } else {
        props.site.as_str()
    };
    let snippet = format!(
        "<script defer src=\"{}/footfall.js\" data-site=\"{site}\"></script>",
        props.origin
    );
    let npm = format!(
        "npm install footfall\n\nimport {{ init }} from \"footfall\";\ninit({{ site: \"{site}\", api: \"{}\" }});",
        props.origin
    );
    html! {
        <section class="card install" id="install-hint" aria-labelledby="install-title">
            <h2 id="install-title">{ "No data yet for " }<code>{ props.site.clone() }</code></h2>
            <p>{ "Add the tracker to your site's pages, just before " }<code>{ "</head>" }</code>{ ":" }</p>
            <pre><code>{ snippet }</code></pre>
            <p>{ "Or from a bundler:" }</p>
            <pre><code>{ npm }</code></pre>
            <p class="muted small">
                { "Page views, clicks and sessions then show up here within a second. \
                   No cookies; visitor ids are anonymous and rotate daily." }
            </p>
        </section>
    }
}
