// The HTTP API (docs/protocol.md): a token kept in localStorage, JSON in and out, errors as
// `ApiError` with the server's code and message.

export class ApiError extends Error {
  constructor(public status: number, public code: string, message: string, public details?: unknown) {
    super(message);
  }
}

export type User = { id: number; email: string; display_name: string; is_admin: boolean };
export type Project = { id: number; name: string; doc_id: string; doc_url: string; role: string; created_at: number };
export type Asset = {
  id: number;
  project_id: number;
  kind: string;
  mime: string;
  name: string;
  width: number;
  height: number;
  duration_ms: number | null;
  source_job: number | null;
  derived?: { filmstrip?: number; waveform?: number; proxy?: number };
  /** Signed links for `<img>`/`<video>`: no token in any URL. */
  links?: { file: string; thumbnail?: string; expires_at: number };
};
export type Job = {
  id: number;
  kind: string;
  state: string;
  input_asset: number | null;
  result_asset: number | null;
  error: string | null;
  estimate_credits: number;
  estimate_ms: number;
  params: any;
  user_id: number;
  created_at: number;
};

export const session = {
  get token(): string | null {
    return localStorage.getItem("moviola.token");
  },
  set token(t: string | null) {
    if (t) localStorage.setItem("moviola.token", t);
    else localStorage.removeItem("moviola.token");
  },
};

export async function api<T = any>(method: string, path: string, body?: unknown): Promise<T> {
  const headers: Record<string, string> = {};
  if (session.token) headers.authorization = `Bearer ${session.token}`;
  if (body !== undefined) headers["content-type"] = "application/json";
  const res = await fetch(`/api/v1${path}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  if (res.status === 204) return undefined as T;
  const data = await res.json().catch(() => ({}));
  if (!res.ok) {
    const e = data.error ?? {};
    throw new ApiError(res.status, e.code ?? "error", e.message ?? res.statusText, e.details);
  }
  return data as T;
}


/** Uploads a file with progress (fetch has no upload progress; XMLHttpRequest does). */
export function upload(project: number, file: File, onProgress: (fraction: number) => void): Promise<any> {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open("POST", `/api/v1/projects/${project}/assets?name=${encodeURIComponent(file.name)}`);
    xhr.setRequestHeader("authorization", `Bearer ${session.token}`);
    xhr.upload.onprogress = (e) => e.lengthComputable && onProgress(e.loaded / e.total);
    xhr.onload = () => {
      const data = JSON.parse(xhr.responseText || "{}");
      if (xhr.status >= 300) reject(new ApiError(xhr.status, data.error?.code ?? "error", data.error?.message ?? xhr.statusText));
      else resolve(data);
    };
    xhr.onerror = () => reject(new ApiError(0, "network", "the upload was interrupted"));
    xhr.send(file);
  });
}

export function wsUrl(path: string): string {
  const proto = location.protocol === "https:" ? "wss" : "ws";
  return `${proto}://${location.host}${path}${path.includes("?") ? "&" : "?"}token=${encodeURIComponent(session.token ?? "")}`;
}
