// Pages: sign in / sign up, the project list (create, share), and the studio.
import { render } from "preact";
import { useEffect, useState } from "preact/hooks";
import { api, ApiError, session, type Project, type User } from "./api";
import { Studio } from "./studio";

function Auth({ onDone }: { onDone: (u: User) => void }) {
  const [mode, setMode] = useState<"in" | "up">("in");
  const [email, setEmail] = useState("");
  const [password, setPassword] = useState("");
  const [name, setName] = useState("");
  const [error, setError] = useState("");
  const submit = async (e: Event) => {
    e.preventDefault();
    setError("");
    try {
      const res =
        mode === "up"
          ? await api("POST", "/auth/register", { email, password, display_name: name || undefined })
          : await api("POST", "/auth/login", { email, password });
      session.token = res.token;
      onDone(res.user);
    } catch (err) {
      setError((err as Error).message);
    }
  };
  return (
    <main class="auth">
      <h1>Moviola</h1>
      <p class="muted">A collaborative AI video studio</p>
      <form onSubmit={submit} aria-label={mode === "in" ? "Sign in" : "Sign up"}>
        {mode === "up" && (
          <label>
            Name <input name="name" value={name} onInput={(e) => setName(e.currentTarget.value)} autocomplete="name" />
          </label>
        )}
        <label>
          Email <input name="email" type="email" required value={email} onInput={(e) => setEmail(e.currentTarget.value)} autocomplete="email" />
        </label>
        <label>
          Password{" "}
          <input name="password" type="password" required minLength={8} value={password} onInput={(e) => setPassword(e.currentTarget.value)} />
        </label>
        {error && <p class="error" role="alert">{error}</p>}
        <button type="submit" class="primary">{mode === "in" ? "Sign in" : "Create account"}</button>
      </form>
      <button class="link" onClick={() => setMode(mode === "in" ? "up" : "in")}>
        {mode === "in" ? "New here? Create an account" : "Have an account? Sign in"}
      </button>
    </main>
  );
}

function Projects({ user, onOpen, onSignOut }: { user: User; onOpen: (p: Project) => void; onSignOut: () => void }) {
  const [projects, setProjects] = useState<Project[]>([]);
  const [name, setName] = useState("");
  const [error, setError] = useState("");
  const load = () => api("GET", "/projects").then((r) => setProjects(r.projects)).catch((e) => setError(e.message));
  useEffect(() => {
    load();
  }, []);
  const create = async (e: Event) => {
    e.preventDefault();
    try {
      const p = await api<Project>("POST", "/projects", { name });
      setName("");
      onOpen(p);
    } catch (err) {
      setError((err as Error).message);
    }
  };
  return (
    <main class="projects">
      <header class="bar">
        <h1>Moviola</h1>
        <span class="muted">{user.display_name || user.email}</span>
        <button onClick={onSignOut}>Sign out</button>
      </header>
      <form onSubmit={create} class="row">
        <input name="project" placeholder="New project name" required value={name} onInput={(e) => setName(e.currentTarget.value)} />
        <button type="submit" class="primary">Create project</button>
      </form>
      {error && <p class="error" role="alert">{error}</p>}
      <ul class="project-list">
        {projects.map((p) => (
          <li key={p.id}>
            <button class="project" onClick={() => onOpen(p)}>
              <strong>{p.name}</strong> <span class="muted">{p.role}</span>
            </button>
          </li>
        ))}
        {projects.length === 0 && <li class="muted">No projects yet.</li>}
      </ul>
    </main>
  );
}

function App() {
  const [user, setUser] = useState<User | null>(null);
  const [checked, setChecked] = useState(false);
  const [project, setProject] = useState<Project | null>(null);
  useEffect(() => {
    if (!session.token) return setChecked(true);
    api<User>("GET", "/me")
      .then(async (u) => {
        setUser(u);
        const id = Number(new URLSearchParams(location.search).get("project"));
        if (id) setProject(await api<Project>("GET", `/projects/${id}`).catch(() => null));
      })
      .catch((e) => {
        if (e instanceof ApiError && e.status === 401) session.token = null;
      })
      .finally(() => setChecked(true));
  }, []);
  const open = (p: Project | null) => {
    setProject(p);
    history.replaceState(null, "", p ? `/?project=${p.id}` : "/");
  };
  if (!checked) return <p class="muted">Loading…</p>;
  if (!user) return <Auth onDone={setUser} />;
  const signOut = async () => {
    await api("POST", "/auth/logout").catch(() => {});
    session.token = null;
    setUser(null);
    open(null);
  };
  if (project) return <Studio user={user} project={project} onClose={() => open(null)} />;
  return <Projects user={user} onOpen={open} onSignOut={signOut} />;
}

export function mount(el: HTMLElement) {
  render(<App />, el);
}
