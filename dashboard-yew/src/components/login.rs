use yew::prelude::*;

#[derive(Properties, PartialEq)]
pub struct LoginProps {
    /// A token is being checked: the button is disabled.
    pub checking: bool,
    /// Why the last attempt failed (or why the session ended).
    pub message: Option<AttrValue>,
    pub on_submit: Callback<String>,
}

/// The sign-in form: one field, the admin token.
#[component]
pub fn Login(props: &LoginProps) -> Html {
    let input = use_node_ref();
    let onsubmit = {
        let input = input.clone();
        let on_submit = props.on_submit.clone();
        Callback::from(move |e: SubmitEvent| {
            e.prevent_default();
            if let Some(el) = input.cast::<web_sys::HtmlInputElement>() {
                let token = el.value().trim().to_string();
                if !token.is_empty() {
                    on_submit.emit(token);
                }
            }
        })
    };
    html! {
        <main class="login">
            <form {onsubmit} aria-labelledby="login-title">
                <h1 id="login-title">{ "Footfall" }</h1>
                <p class="muted">{ "Sign in with the admin token." }</p>
                <label for="token">{ "Admin token" }</label>
                <input id="token" ref={input} type="password" autocomplete="current-password"
                    required=true autofocus=true disabled={props.checking} />
                <button type="submit" disabled={props.checking}>
                    { if props.checking { "Checking…" } else { "Sign in" } }
                </button>
                if let Some(msg) = &props.message {
                    <p id="login-error" class="error" role="alert">{ msg.clone() }</p>
                }
                <p class="muted small">
                    { "The token is printed by " }<code>{ "footfall standalone" }</code>
                    { " at start-up, or set with " }<code>{ "--admin-token" }</code>
                    { " / " }<code>{ "FOOTFALL_ADMIN_TOKEN" }</code>{ ". It is kept for this tab only." }
                </p>
            </form>
        </main>
    }
}
