/** An error for everyone to notice, screen readers included (`role="alert"`). */
export function Alert({ children }: { children: React.ReactNode }) {
  return (
    <div role="alert" className="alert">
      {children}
    </div>
  );
}
